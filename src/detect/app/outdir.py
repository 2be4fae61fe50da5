"""The output directory of one run: claimed with an exclusive lock, never shared.

Two processes writing one ``session.h5`` / ``alarms.jsonl`` corrupt both, so a run holds an
advisory lock (``flock`` on ``.detect.lock`` inside the directory) from before it creates
its first file until its files are closed. A second run on the same directory gets a one-line
error (exit 2). Default directory names carry the start time in seconds; two runs started in
the same second get ``-2``, ``-3``... (claimed with an atomic ``mkdir``), so they never meet.
"""

from __future__ import annotations

import contextlib
import os
from pathlib import Path
from types import TracebackType

from detect.errors import EXIT_USAGE, TaskError

LOCK_NAME = ".detect.lock"


def _try_lock(fd: int) -> bool:
    """Non-blocking exclusive lock on an open file; False when another process holds it."""
    try:
        import fcntl
    except ImportError:  # Windows
        import msvcrt

        try:
            msvcrt.locking(fd, msvcrt.LK_NBLCK, 1)  # type: ignore[attr-defined]
        except OSError:
            return False
        return True
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return False
    return True


def _holder(path: Path) -> str:
    try:
        pid = path.read_text(encoding="ascii").strip()
    except OSError:
        return ""
    return f" (pid {pid})" if pid.isdigit() else ""


class OutDirLock:
    """An exclusive claim on ``directory``; release it with :meth:`release` or ``with``."""

    def __init__(self, directory: Path, fd: int, created: bool) -> None:
        self.directory = directory
        self.path = directory / LOCK_NAME
        self._fd: int | None = fd
        #: this run made the directory (so it may remove it again when it wrote nothing)
        self.created = created

    def release(self, remove_empty_dir: bool = False) -> None:
        """Drop the lock file and the lock; optionally the directory, if nothing else is in it."""
        if self._fd is None:
            return
        with contextlib.suppress(OSError):  # unlinked while locked: a waiter re-checks
            self.path.unlink()
        os.close(self._fd)
        self._fd = None
        if remove_empty_dir and self.created:
            with contextlib.suppress(OSError):  # not empty: keep what is there
                self.directory.rmdir()

    def __enter__(self) -> OutDirLock:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.release()


def lock_dir(directory: Path, what: str, created: bool = False) -> OutDirLock:
    """Create ``directory`` if needed and lock it; a one-line :class:`TaskError` (exit 2)
    when it cannot be created or written, or another run holds it."""
    created = created or not directory.exists()
    try:
        directory.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise TaskError(
            f"{what} {directory}: cannot create it ({exc.strerror or exc})", EXIT_USAGE
        ) from exc
    if not directory.is_dir():
        raise TaskError(f"{what} {directory}: not a directory", EXIT_USAGE)
    path = directory / LOCK_NAME
    for _ in range(20):
        try:
            fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
        except OSError as exc:
            raise TaskError(
                f"{what} {directory}: not writable ({exc.strerror or exc})", EXIT_USAGE
            ) from exc
        if not _try_lock(fd):
            os.close(fd)
            raise TaskError(
                f"{what} {directory} is in use by another detect run{_holder(path)}: "
                "choose another directory",
                EXIT_USAGE,
            )
        try:  # the holder before us may have unlinked the file we opened: lock the live one
            same = os.fstat(fd).st_ino == os.stat(path).st_ino
        except FileNotFoundError:
            same = False
        if not same:
            os.close(fd)
            continue
        os.ftruncate(fd, 0)
        os.write(fd, f"{os.getpid()}\n".encode("ascii"))
        return OutDirLock(directory, fd, created)
    raise TaskError(f"{what} {directory}: cannot take its lock (contended)", EXIT_USAGE)


def claim_default_dir(parent: Path, stem: str, what: str) -> OutDirLock:
    """A new directory ``parent/stem`` (or ``stem-2``, ``stem-3``...), created and locked.

    ``mkdir`` without ``exist_ok`` is atomic: of two runs started in the same second exactly
    one gets each name."""
    try:
        parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise TaskError(
            f"{what} {parent}: cannot create it ({exc.strerror or exc})", EXIT_USAGE
        ) from exc
    for k in range(1, 1000):
        d = parent / (stem if k == 1 else f"{stem}-{k}")
        try:
            d.mkdir()
        except FileExistsError:
            continue
        except OSError as exc:
            raise TaskError(
                f"{what} {d}: cannot create it ({exc.strerror or exc})", EXIT_USAGE
            ) from exc
        return lock_dir(d, what, created=True)
    raise TaskError(f"{what}: {parent}/{stem}-* are all taken", EXIT_USAGE)
