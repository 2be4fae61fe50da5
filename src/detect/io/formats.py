"""Reading any supported GPR file: format detection by content, then the chosen reader.

Each reader (``dzt``, ``dt1``, ``rd3``, ``gprmax``, ``segy``, ``session``) returns a
:class:`GprFile`; :mod:`detect.io.registry` names them and imports one only when it is
needed. :func:`detect_format` looks at the bytes (magic numbers, HDF5 attributes, header
text); the file name extension only breaks ties, and the reason for the choice is kept in
:attr:`GprFile.format_reason` so ``detect info`` can say it.

The shared types and helpers live in :mod:`detect.io.base` (which the readers import);
the ones callers used to import from here still are importable from here.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from detect.io import registry
from detect.io.base import (
    HDF5_MAGIC,
    HEADERS_ONLY_ABOVE_BYTES,
    READ_LIMIT_ENV,
    GprFile,
    ReaderError,
    file_size,
    gib,
    hdf5_damage,
    read_head,
    trace_positions,
)

__all__ = [
    "FORMATS",
    "HEADERS_ONLY_ABOVE_BYTES",
    "READ_LIMIT_ENV",
    "GprFile",
    "ReaderError",
    "detect_format",
    "read_gpr",
    "trace_positions",
]

#: Formats we read, in the order content sniffing tries them.
FORMATS: tuple[str, ...] = registry.names()


def detect_format(path: str | os.PathLike[str]) -> tuple[str, str]:
    """(format, reason) from the file's content; the extension only breaks ties."""
    p = Path(path)
    if not p.is_file():
        raise ReaderError(f"{p}: not a file")
    size = file_size(p)
    if size == 0:
        raise ReaderError(f"{p}: empty file")
    head = read_head(p, 4096)
    hint = registry.extension_hint(p.suffix)
    matches: list[tuple[str, str]] = []
    unavailable: list[str] = []
    for name in registry.names():
        try:
            sniff = registry.sniffer(name)
        except registry.FormatUnavailable as exc:
            unavailable.append(str(exc))
            continue
        try:
            reason = sniff(p, head)
        except Exception:  # a sniffer that trips on foreign bytes just does not match
            reason = None
        if reason is not None:
            matches.append((name, reason))
    if not matches and head.startswith(HDF5_MAGIC):
        damage = hdf5_damage(p)
        if damage is not None:
            raise ReaderError(damage)
    if not matches:
        ext = f" (extension says {hint})" if hint else ""
        missing = f"; not tried: {'; '.join(unavailable)}" if unavailable else ""
        raise ReaderError(
            f"{p}: not a recognised GPR file: content matches no format{ext}{missing}"
        )
    for name, reason in matches:
        if name == hint:
            return name, reason
    name, reason = matches[0]
    if hint is not None:
        reason += f"; extension {p.suffix} suggested {hint} but the content says {name}"
    return name, reason


def read_gpr(
    path: str | os.PathLike[str],
    format: str | None = None,
    trace_spacing_m: float | None = None,
    channel: int = 0,
    headers_only: bool = False,
) -> GprFile:
    """Read any supported GPR file (format from content unless ``format`` forces one).

    ``trace_spacing_m`` is used where the file has no trace step, and overrides a
    step the file gives (with a warning naming both). ``channel`` selects the channel
    of a multi-channel file that :attr:`GprFile.block` is (a one-line ``ReaderError``
    naming the file and its channel count when it has no such channel).
    ``headers_only`` (``detect info``): the DZT, DT1 and RD3 readers then skip the samples
    of a file above :data:`HEADERS_ONLY_ABOVE_BYTES` (O(1) memory whatever its size; see
    :attr:`GprFile.samples_read`). Samples beyond the read limit are a ReaderError
    (:func:`~detect.io.base.check_read_size`), and so is running out of memory: never a traceback.
    """
    p = Path(path)
    if format is None:
        fmt, reason = detect_format(p)
    else:
        fmt = format.lower()
        known = registry.names()
        if fmt not in known:
            raise ReaderError(f"{p}: unknown format '{format}'; known: {', '.join(known)}")
        if not p.is_file():
            raise ReaderError(f"{p}: not a file")
        if file_size(p) == 0:
            raise ReaderError(f"{p}: empty file")
        reason = "forced by input.format"
    try:
        read = registry.reader(fmt)
    except registry.FormatUnavailable as exc:
        raise ReaderError(f"{p}: {exc}") from exc
    kwargs: dict[str, Any] = {"trace_spacing_m": trace_spacing_m}
    if headers_only and registry.spec(fmt).headers_only:
        kwargs["headers_only"] = True
    try:
        out = read(p, **kwargs)
    except MemoryError as exc:
        raise ReaderError(
            f"{p}: not enough memory to read this {fmt} file of {gib(file_size(p))} "
            f"({exc or 'MemoryError'}); cut it into shorter profiles"
        ) from None
    except ReaderError as exc:
        msg = str(exc)
        if "\n" in msg:
            raise ReaderError(" ".join(part.strip() for part in msg.splitlines())) from exc
        raise
    except (
        OSError,
        ValueError,
        KeyError,
        IndexError,
        TypeError,
        RuntimeError,
        AttributeError,
    ) as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise ReaderError(f"{p}: cannot read as {fmt}: {first}") from exc
    out.format_reason = reason
    out.select_channel(channel)
    return out
