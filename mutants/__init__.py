"""Mutation catalogue of ``mast verify``: realistic bugs, applied in memory (never by editing files).

* :mod:`mutants.catalogue` — the named mutants (:data:`~mutants.catalogue.MUTANTS`);
* :mod:`mutants.apply` — ``python -m mutants.apply NAME mast-args...``: apply one mutant in this
  process, then run the ``mast`` CLI;
* ``python -m mutants`` — the runner behind ``make mutants``: ``mast verify --quick`` on the CI
  datasets against each mutant, a table (mutant, checks that fired) and ``mutants killed: K/N``.
"""
