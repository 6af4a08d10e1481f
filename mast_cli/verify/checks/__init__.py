"""The checks of ``mast verify``, one function per check, grouped by the paper's statements.

Every function takes a :class:`~mast_cli.verify.context.Context` and returns one
:class:`~mast_cli.verify.result.CheckResult` or a list of them.  They are run in the order
of the table :data:`mast_cli.verify.registry.CHECKS`; nothing here registers itself.
"""
