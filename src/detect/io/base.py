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
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np

from detect.blocks import GprBlock, GprHeader, GpsFix


class ReaderError(ValueError):
    """A file cannot be read as the format it claims or seems to be (one line)."""


@dataclass
class GprFile:
    """A GPR file as read: one :class:`GprBlock` per channel plus what the header says.

    ``trace_spacing_m`` is None when neither the file nor the user gives it (a scan then
    assumes one, see :func:`detect.engine.items.file_items`); ``spacing_from`` says where
    it came from (the header field, or the user's option).
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
    spacing_from: str | None = None
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
            "trace_spacing_from": self.spacing_from,
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


#: The warning of a file without a trace spacing (a scan replaces it by the line that
#: says which spacing it assumed).
NO_SPACING = (
    "the file gives no trace spacing: a scan assumes one from the trace rate and "
    "input.walking_speed_m_s (or pass input.trace_spacing_m)"
)
#: :attr:`GprFile.spacing_from` when the user gave the spacing.
USER_SPACING = "--trace-spacing-m (input.trace_spacing_m)"


def apply_spacing(
    out: GprFile,
    file_spacing_m: float | None,
    user_spacing_m: float | None,
    source: str = "the file header",
) -> float | None:
    """Resolve the trace step: the user's value wins (warned if it contradicts the file).

    ``source`` names where ``file_spacing_m`` came from (e.g. ``"header rhf_spm = 50
    scans/m"``); :attr:`GprFile.spacing_from` records the winner."""
    if user_spacing_m is not None:
        if file_spacing_m and not math.isclose(file_spacing_m, user_spacing_m, rel_tol=1e-6):
            out.warnings.append(
                f"trace spacing {user_spacing_m} m given by the user overrides "
                f"{file_spacing_m:g} m from the file"
            )
        out.spacing_from = USER_SPACING
        return float(user_spacing_m)
    if file_spacing_m is None or not (file_spacing_m > 0):
        out.warnings.append(NO_SPACING)
        out.spacing_from = None
        return None
    out.spacing_from = source
    return float(file_spacing_m)


#: Speeds (m/s) a GPR survey can move at: a stepped survey with long stacks (1 mm/s) to a
#: road survey van (50 m/s = 180 km/h). A trace spacing that implies a speed outside this
#: for the file's trace rate is a header that lies.
SURVEY_SPEED_RANGE_M_S = (1e-3, 50.0)
#: Trace rates (traces/s) a GPR can record at: one trace in 17 minutes (stepped surveys
#: with long stacks) to 100 000 scans/s; a header rate outside it is not used.
TRACE_RATE_RANGE_HZ = (1e-3, 1e5)


def plausible_rate(out: GprFile, rate_hz: float | None, field_name: str) -> float | None:
    """``rate_hz`` when it is a trace rate a GPR can record at, else None (warned,
    naming ``field_name``). Zero/None (the header gives none) is None without a warning."""
    if rate_hz is None or rate_hz == 0:
        return None
    lo, hi = TRACE_RATE_RANGE_HZ
    if math.isfinite(rate_hz) and lo <= rate_hz <= hi:
        return float(rate_hz)
    out.warnings.append(
        f"{field_name} = {rate_hz:g} traces/s is not a rate a GPR records at "
        f"({lo:g} to {hi:g}): trace rate not used (trace times unknown)"
    )
    return None


def check_survey_speed(
    out: GprFile,
    spacing_m: float | None,
    rate_hz: float | None,
    what: str,
    at_most: bool = False,
) -> float | None:
    """``spacing_m`` unless, at ``rate_hz`` traces/s, it implies a speed no survey moves at;
    then None, with one warning naming ``what`` (the header field) and that the spacing is
    not used (a scan then assumes one from the walking speed).

    ``at_most``: the rate is the radar's top scan rate of a distance-triggered file, so
    ``spacing x rate`` is only the fastest the head could have moved: only too slow a
    top speed is impossible then.
    """
    if spacing_m is None or not rate_hz or out.spacing_from == USER_SPACING:
        return spacing_m
    speed = spacing_m * rate_hz
    lo, hi = SURVEY_SPEED_RANGE_M_S
    if lo <= speed and (at_most or speed <= hi):
        return spacing_m
    kind = "a top speed" if at_most else "a speed"
    out.warnings.append(
        f"{what} gives a trace spacing of {spacing_m:.4g} m, which at {rate_hz:g} traces/s is "
        f"{kind} of {speed:.3g} m/s (a survey moves at {lo:g} to {hi:g} m/s): spacing not "
        "taken from the header (a scan assumes the default walking speed)"
    )
    out.spacing_from = None
    return None


def check_antenna_nyquist(out: GprFile) -> None:
    """Drop an antenna frequency above the sampling Nyquist frequency (1 / 2 dt).

    Samples that far apart cannot hold that antenna's signal, so the antenna field or
    the time window lies; the window scales the data and the antenna only labels it, so
    the window is kept and the centre frequency left unknown (the DSP measures it)."""
    for i, b in enumerate(out.blocks):
        hz = b.header.antenna_hz
        nyquist_hz = 0.5e9 / b.header.dt_ns
        if hz is None or hz <= nyquist_hz:
            continue
        out.warnings.append(
            f"channel {b.header.channel}: antenna frequency {hz / 1e6:g} MHz is above the "
            f"sampling Nyquist frequency {nyquist_hz / 1e6:.4g} MHz (sample interval "
            f"{b.header.dt_ns:.4g} ns): the header's antenna or time window is wrong; the "
            "time window is kept and the antenna frequency left unknown"
        )
        out.blocks[i] = replace(b, header=replace(b.header, antenna_hz=None))
    if out.blocks:
        hz = out.block.header.antenna_hz
        out.antenna_mhz = hz / 1e6 if hz else None
