"""What every GPR file reader shares: the :class:`GprFile` result, :class:`ReaderError`,
and the small helpers for sizes, memory limits, headers-only reads and companion files.

The readers (``dzt``, ``dt1``, ``rd3``, ``gprmax``, ``segy``, ``session``) import this
module only; :mod:`detect.io.registry` names them and :mod:`detect.io.formats` (format
detection and :func:`~detect.io.formats.read_gpr`) chooses one, so imports run one way:
formats -> registry -> (a reader, when chosen) -> base.
"""

from __future__ import annotations

import datetime as _dt
import math
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from detect.blocks import GprBlock, GprHeader, GpsFix


class ReaderError(ValueError):
    """A file cannot be read as the format it claims or seems to be (one line)."""


@dataclass
class GprFile:
    """A GPR file as read: one :class:`GprBlock` per channel plus what the header says.

    ``trace_spacing_m`` is None when neither the file nor the user gives it;
    ``antenna_mhz`` (of the selected channel) is None when the antenna is not known
    (there is a warning).
    ``gps_trace`` gives, for each fix in ``gps``, the (fractional) trace index it
    belongs to; ``marks`` are trace indices of user marks. ``channel`` is the index in
    ``blocks`` of the channel that :attr:`block` (and so a scan or replay) uses.
    ``samples_read`` is False when the caller asked for headers only and the reader
    skipped the samples: the blocks then have the right shapes but hold no data (zero-
    stride placeholders), and only header facts may be used.
    """

    path: Path
    format: str
    format_reason: str
    blocks: list[GprBlock]
    trace_spacing_m: float | None = None
    antenna_mhz: float | None = None
    trace_rate_hz: float | None = None
    gps: list[GpsFix] = field(default_factory=list)
    gps_trace: np.ndarray = field(default_factory=lambda: np.zeros(0))
    marks: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int64))
    warnings: list[str] = field(default_factory=list)
    meta: dict[str, Any] = field(default_factory=dict)
    channel: int = 0
    samples_read: bool = True

    @property
    def block(self) -> GprBlock:
        return self.blocks[self.channel]

    def select_channel(self, channel: int) -> None:
        """Make ``channel`` (0-based, as ``detect info`` lists them) the one :attr:`block` is."""
        n = self.n_channels
        if not (0 <= channel < n):
            raise ReaderError(
                f"{self.path}: no channel {channel}: the file has {n} channel(s), 0 to {n - 1}"
            )
        self.channel = channel
        antenna_hz = self.block.header.antenna_hz
        self.antenna_mhz = antenna_hz / 1e6 if antenna_hz else None

    def channels(self) -> list[dict[str, Any]]:
        """One summary per channel: what ``detect info`` lists."""
        return [
            {
                "channel": i,
                "n_samples": b.n_samples,
                "dt_ns": float(b.header.dt_ns),
                "time_zero_ns": float(b.header.time_zero_ns),
                "antenna_mhz": b.header.antenna_hz / 1e6 if b.header.antenna_hz else None,
            }
            for i, b in enumerate(self.blocks)
        ]

    @property
    def n_channels(self) -> int:
        return len(self.blocks)

    @property
    def n_traces(self) -> int:
        return self.block.n

    @property
    def n_samples(self) -> int:
        return self.block.n_samples

    @property
    def dt_ns(self) -> float:
        return float(self.block.header.dt_ns)

    @property
    def window_ns(self) -> float:
        return self.dt_ns * self.n_samples

    @property
    def duration_s(self) -> float | None:
        if self.trace_rate_hz:
            return self.n_traces / self.trace_rate_hz
        return None

    def info(self) -> dict[str, Any]:
        """The JSON object of ``detect info --json``."""
        return {
            "path": str(self.path),
            "format": self.format,
            "format_reason": self.format_reason,
            "n_channels": self.n_channels,
            "channel": self.channel,
            "channels": self.channels(),
            "n_traces": self.n_traces,
            "n_samples": self.n_samples,
            "dt_ns": self.dt_ns,
            "window_ns": self.window_ns,
            "time_zero_ns": float(self.block.header.time_zero_ns),
            "trace_spacing_m": self.trace_spacing_m,
            "antenna_mhz": self.antenna_mhz,
            "trace_rate_hz": self.trace_rate_hz,
            "duration_s": self.duration_s,
            "gps_present": any(f.has_fix for f in self.gps),
            "n_gps_fixes": len(self.gps),
            "n_marks": len(self.marks),
            "samples_read": self.samples_read,
            "warnings": list(self.warnings),
        }


def trace_positions(n_traces: int, spacing_m: float | None, start_m: float = 0.0) -> np.ndarray:
    """Along-track positions of evenly spaced traces, NaN when the step is unknown."""
    if spacing_m is None or not math.isfinite(spacing_m) or spacing_m <= 0:
        return np.full(n_traces, np.nan)
    return start_m + np.arange(n_traces, dtype=np.float64) * spacing_m


#: Environment variable that sets the most memory (GiB) the samples of one file may take
#: once read as float32; unset, it is half the machine's physical memory.
READ_LIMIT_ENV = "DETECT_READ_LIMIT_GIB"

#: With ``headers_only``, a reader still reads the samples of files up to this many bytes
#: (then everything ``info`` shows, data-derived marks included, is as in a full read).
HEADERS_ONLY_ABOVE_BYTES = 64 * 2**20


def read_limit_bytes() -> int:
    """Most bytes the float32 samples of one file may occupy in memory."""
    raw = os.environ.get(READ_LIMIT_ENV)
    if raw:
        try:
            gib = float(raw)
        except ValueError:
            raise ReaderError(f"{READ_LIMIT_ENV}={raw!r} is not a number of GiB") from None
        if not (math.isfinite(gib) and gib > 0):
            raise ReaderError(f"{READ_LIMIT_ENV}={raw!r} must be a positive number of GiB")
        return int(gib * 2**30)
    try:
        phys = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError, AttributeError):  # pragma: no cover - non-POSIX
        phys = 8 * 2**30
    return int(phys) // 2


def gib(n_bytes: float) -> str:
    return f"{n_bytes / 2**30:.3g} GiB"


def check_read_size(path: Path, n_values: int, what: str) -> None:
    """Refuse, before allocating, samples whose float32 copy would pass the read limit.

    One line naming the file, what it holds, the memory it would need and the limit, so
    a multi-GB recording is a clear refusal instead of a MemoryError (or the OOM killer).
    """
    need = int(n_values) * 4
    limit = read_limit_bytes()
    if need > limit:
        raise ReaderError(
            f"{path}: {what} would need {gib(need)} of memory as float32 samples, beyond the "
            f"read limit of {gib(limit)} (half the physical memory, or {READ_LIMIT_ENV}); "
            "cut the file into shorter profiles (or use `detect info`, which reads headers only)"
        )


def placeholder_block(n_traces: int, n_samples: int, header: GprHeader) -> GprBlock:
    """A block with the shape of ``n_traces x n_samples`` but no memory behind it (zero-
    stride views of NaN): what a headers-only read returns instead of the samples."""
    nan32 = np.float32(np.nan)
    return GprBlock(
        data=np.broadcast_to(nan32, (n_traces, n_samples)),
        seq=np.broadcast_to(np.int64(-1), (n_traces,)),
        host_time_s=np.broadcast_to(np.float64(np.nan), (n_traces,)),
        position_m=np.broadcast_to(np.float64(np.nan), (n_traces,)),
        header=header,
    )


def skip_samples(headers_only: bool, data_bytes: int, out: GprFile) -> bool:
    """Whether a headers-only read skips the samples (it does above
    :data:`HEADERS_ONLY_ABOVE_BYTES`); says so in ``out.warnings`` when it does."""
    if not headers_only or data_bytes <= HEADERS_ONLY_ABOVE_BYTES:
        return False
    out.samples_read = False
    out.warnings.append(
        f"headers only: the {gib(data_bytes)} of samples were not read past the first "
        "few MiB (a scan reads them all); marks in the sample words are not counted"
    )
    return True


def file_size(path: Path) -> int:
    try:
        return os.path.getsize(path)
    except OSError as exc:
        raise ReaderError(f"{path}: cannot read ({exc.strerror or exc})") from exc


def read_head(path: Path, n: int) -> bytes:
    try:
        with open(path, "rb") as f:
            return f.read(n)
    except OSError as exc:
        raise ReaderError(f"{path}: cannot read ({exc.strerror or exc})") from exc


def sibling(path: Path, *suffixes: str) -> Path | None:
    """The companion file with one of ``suffixes`` (any case), or None."""
    for suf in suffixes:
        for cand in (suf.lower(), suf.upper()):
            p = path.with_suffix(cand)
            if p.exists():
                return p
    parent = path.parent
    stem = path.stem.lower()
    wanted = {s.lower() for s in suffixes}
    try:
        for p in parent.iterdir():
            if p.stem.lower() == stem and p.suffix.lower() in wanted:
                return p
    except OSError:
        return None
    return None


HDF5_MAGIC = b"\x89HDF\r\n\x1a\n"
_EOF = re.compile(r"eof = (\d+).*stored_eof = (\d+)")


def hdf5_damage(path: Path) -> str | None:
    """One line naming the damage of an HDF5 file (a session recording cut short by a dead
    battery or a full disk) that HDF5 cannot open, or None when it opens.

    Says how much of the file is there and when it was last written, so nobody mistakes
    a damaged recording for a file of another kind, or throws it away."""
    import h5py  # lazy: only HDF5 files need it, so the binary readers never load it

    try:
        with h5py.File(path, "r"):
            return None
    except Exception as exc:  # h5py raises OSError, sometimes RuntimeError/KeyError
        reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    try:
        st = os.stat(path)
    except OSError:
        return f"{path}: {path.name} is truncated/damaged: {reason}"
    when = _dt.datetime.fromtimestamp(st.st_mtime, _dt.UTC).strftime("%Y-%m-%d %H:%M:%S")
    m = _EOF.search(reason)
    if m:
        have, want = int(m.group(1)), int(m.group(2))
        kept = (
            f"it holds {have} of the {want} bytes HDF5 recorded ({100.0 * have / want:.1f} %)"
            if want > 0
            else f"it holds {have} bytes"
        )
        what = "truncated"
    else:
        kept, what = f"{st.st_size} bytes", "damaged"
    return (
        f"{path}: {path.name} is {what} (an HDF5 file, e.g. a session recording cut short): "
        f"{reason}; {kept}, last written {when} UTC; the data recorded up to the cut may be "
        "recoverable with HDF5 tools, so keep the file (this reader cannot open it)"
    )


def check_finite(out: GprFile) -> None:
    """Warn about NaN/inf samples (float formats can hold them; integer ones cannot)."""
    for b in out.blocks:
        bad = int(b.data.size - np.count_nonzero(np.isfinite(b.data)))
        if bad:
            out.warnings.append(f"channel {b.header.channel}: {bad} sample(s) are NaN or infinite")


def apply_spacing(
    out: GprFile, file_spacing_m: float | None, user_spacing_m: float | None
) -> float | None:
    """Resolve the trace step: the user's value wins (warned if it contradicts the file)."""
    if user_spacing_m is not None:
        if file_spacing_m and not math.isclose(file_spacing_m, user_spacing_m, rel_tol=1e-6):
            out.warnings.append(
                f"trace spacing {user_spacing_m} m given by the user overrides "
                f"{file_spacing_m:g} m from the file"
            )
        return float(user_spacing_m)
    if file_spacing_m is None or not (file_spacing_m > 0):
        out.warnings.append(
            "the file gives no trace spacing: positions are unknown (set input.trace_spacing_m)"
        )
        return None
    return float(file_spacing_m)
