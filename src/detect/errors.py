"""Errors: what the library raises (:class:`DetectError` and its kinds), what a command
raises (:class:`TaskError`, with its exit status), and the exit statuses.

The exit status tells a script or supervisor what happened (README, "Exit status"):

=====  ==================================================================================
code   meaning
=====  ==================================================================================
0      completed, every needed sensor worked: only lane-end ground (never a window centre)
       is not covered
1      failed (an unexpected error)
2      usage: a wrong key, value or file; a refusal (output directory in use, model input
       unlike the training data)
3      unavailable here: a command, module or the trained model is missing or unreadable
4      completed, but a sensor faulted (or was never there, or data could not be placed):
       ground inside the lane is NOT covered; see the coverage in alarms.json
5      completed, but the recording (session.h5 or the alarm files) was lost or stopped
6      processing failed (replay/scan): the run stopped before the end of its input; the
       files hold what was processed before the failure
=====  ==================================================================================

When several apply, the most severe wins: 6, then 4 (the ground must be swept again), then 5.
"""

from __future__ import annotations

from typing import Any

EXIT_OK = 0
EXIT_FAILURE = 1
EXIT_USAGE = 2
EXIT_UNAVAILABLE = 3
EXIT_NOT_COVERED = 4
EXIT_RECORDING_LOST = 5
EXIT_PROCESSING_FAILED = 6

#: code -> one line, for ``detect --help`` and the README table
EXIT_CODES: dict[int, str] = {
    EXIT_OK: "completed; every needed sensor worked (lane-end ground is never covered)",
    EXIT_FAILURE: "failed (unexpected error)",
    EXIT_USAGE: "usage: wrong key/value/file, output directory in use, input refused",
    EXIT_UNAVAILABLE: "unavailable: command, module or trained model missing/unreadable",
    EXIT_NOT_COVERED: "completed, but a sensor faulted: ground inside the lane NOT covered",
    EXIT_RECORDING_LOST: "completed, but the recording or alarm files were lost",
    EXIT_PROCESSING_FAILED: "processing failed (replay/scan stopped; files hold what was done)",
}


class DetectError(Exception):
    """What the library raises on purpose; the message is one line.

    The commands (:mod:`detect.app`) turn each kind into its exit status
    (:data:`EXIT_OF`). ``result``: when processing had started, what was processed before
    the error (the API's ``ScanResult``), else None.
    """

    def __init__(self, message: str, result: Any = None) -> None:
        super().__init__(message)
        self.result = result


class InputError(DetectError, ValueError):
    """A file that cannot be read, or input the model was not made for (another radar)."""


class SettingsError(DetectError, ValueError):
    """A wrong config key or value, or settings that do not fit the data."""


class ModelError(DetectError):
    """A model that is missing, unreadable, or trained with other preprocessing."""


class ProcessingError(DetectError):
    """Processing stopped part-way (a reader, DSP or scorer failure)."""


#: the exit status of each kind of library error (the most specific class listed wins)
EXIT_OF: dict[type[DetectError], int] = {
    InputError: EXIT_USAGE,
    SettingsError: EXIT_USAGE,
    ModelError: EXIT_UNAVAILABLE,
    ProcessingError: EXIT_PROCESSING_FAILED,
}


def exit_code_of(exc: DetectError) -> int:
    """The exit status a command returns for ``exc``."""
    for kind in type(exc).__mro__:
        if kind in EXIT_OF:
            return EXIT_OF[kind]  # type: ignore[index]
    return EXIT_FAILURE


class TaskError(RuntimeError):
    """A task failed for a reason the user can act on; the message is one line.

    Bad input (a missing or malformed file, a wrong value) uses ``EXIT_USAGE``.
    """

    def __init__(self, message: str, exit_code: int = EXIT_FAILURE) -> None:
        super().__init__(message)
        self.exit_code = exit_code
