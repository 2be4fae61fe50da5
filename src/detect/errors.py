"""Errors a task raises for the user: one line, and the exit status to return."""

from __future__ import annotations

EXIT_OK = 0
EXIT_FAILURE = 1
EXIT_USAGE = 2
EXIT_UNAVAILABLE = 3


class TaskError(RuntimeError):
    """A task failed for a reason the user can act on; the message is one line.

    Bad input (a missing or malformed file, a wrong value) uses ``EXIT_USAGE``.
    """

    def __init__(self, message: str, exit_code: int = EXIT_FAILURE) -> None:
        super().__init__(message)
        self.exit_code = exit_code
