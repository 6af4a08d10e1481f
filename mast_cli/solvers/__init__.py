"""Layer 2 — minimizers: damped Newton (ERM, pool/SAA, enumeration).

- :mod:`~mast_cli.solvers.newton` — line search, shifted Cholesky, PCG, ``solve_erm``.
- :mod:`~mast_cli.solvers.pool` — ``solve_pool`` (x*_pool) and ``solve_enumerated`` (x*_D).
"""
