"""Format name -> GPR file reader, imported only when a file needs it.

Each format is one module (``detect.io.<name>``) that imports :mod:`detect.io.base` only
and offers two functions: a *sniffer* ``sniff(path, head) -> reason | None`` that
recognises the format from the first bytes (and, for HDF5, the file's attributes), and a
*reader* ``read_...(path, trace_spacing_m=None[, headers_only=False]) -> GprFile``.
Adding a format is that module plus one line in :data:`READERS`; nothing else changes.
The modules are imported here, lazily, by name (like :mod:`detect.sources.registry`):
a forced format imports its reader only, content sniffing imports each sniffer's module.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from detect.io.base import GprFile, ReaderError

#: A sniffer: (path, the file's first bytes) -> why this format, or None.
Sniffer = Callable[[Path, bytes], "str | None"]


@dataclass(frozen=True)
class ReaderSpec:
    """Where one format's functions live, and what its reader supports."""

    reader: str  #: "module:function" returning a :class:`GprFile`
    sniffer: str  #: "module:function", see :data:`Sniffer`
    extensions: tuple[str, ...]  #: lower-case suffixes that hint at it (ties only)
    headers_only: bool = False  #: the reader takes ``headers_only`` (``detect info``)


#: The formats we read, in the order content sniffing tries them (the first match wins
#: unless the extension names another match).
READERS: dict[str, ReaderSpec] = {
    "session": ReaderSpec(
        "detect.io.session:read_session_gpr", "detect.io.session:sniff", (".h5", ".hdf5")
    ),
    "gprmax": ReaderSpec("detect.io.gprmax:read_gprmax", "detect.io.gprmax:sniff", (".out",)),
    "segy": ReaderSpec("detect.io.segy:read_segy", "detect.io.segy:sniff", (".sgy", ".segy")),
    "dzt": ReaderSpec("detect.io.dzt:read_dzt", "detect.io.dzt:sniff", (".dzt",), True),
    "dt1": ReaderSpec("detect.io.dt1:read_dt1", "detect.io.dt1:sniff", (".dt1", ".hd"), True),
    "rd3": ReaderSpec(
        "detect.io.rd3:read_rd3", "detect.io.rd3:sniff", (".rd3", ".rd7", ".rad"), True
    ),
}


class FormatUnavailable(ReaderError):
    """A known format whose module cannot be imported here (a dependency is missing)."""


def names() -> tuple[str, ...]:
    """The format names, in sniffing order."""
    return tuple(READERS)


def spec(fmt: str) -> ReaderSpec:
    try:
        return READERS[fmt]
    except KeyError:
        raise ReaderError(f"unknown format '{fmt}'; known: {', '.join(READERS)}") from None


def _load(fmt: str, target: str) -> Callable[..., Any]:
    module_name, func_name = target.split(":")
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise FormatUnavailable(f"format '{fmt}' is not available here ({exc})") from exc
    # Looked up at each call, so a patched function (tests) is the one used.
    func: Callable[..., Any] = getattr(module, func_name)
    return func


def reader(fmt: str) -> Callable[..., GprFile]:
    """The reader function of ``fmt`` (its module imported now)."""
    return _load(fmt, spec(fmt).reader)


def sniffer(fmt: str) -> Sniffer:
    """The sniffer function of ``fmt`` (its module imported now)."""
    return _load(fmt, spec(fmt).sniffer)


def extension_hint(suffix: str) -> str | None:
    """The format a file name suffix suggests (``.DZT`` -> ``dzt``), or None."""
    suffix = suffix.lower()
    for name, s in READERS.items():
        if suffix in s.extensions:
            return name
    return None
