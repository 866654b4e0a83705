"""Errors a user can fix: the CLI prints them as one line, without a traceback."""


class ProfitstreamError(Exception):
    """An expected failure whose message says what went wrong and how to fix it."""

    exit_code = 2
