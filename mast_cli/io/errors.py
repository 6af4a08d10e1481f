"""Errors the command line reports as one line with exit code 2."""


class MastError(ValueError):
    """Bad user input: the CLI prints ``Error: <message>`` and exits with code 2.

    Library functions raise it (never ``sys.exit``) so that they stay usable
    from Python; the Click layer turns it into a one-line message.
    """

    exit_code = 2


class NotEnumerable(MastError):
    """A sketch distribution whose support cannot be listed (continuous, or too large):
    checks that need exact enumeration skip it (``mast verify`` reports them skipped)."""


def check(condition, message):
    """Raise :class:`MastError` with ``message`` unless ``condition`` holds."""
    if not condition:
        raise MastError(message)
