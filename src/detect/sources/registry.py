"""Config name -> Source class, imported only when a config chooses it."""

from __future__ import annotations

import importlib
from collections.abc import Mapping
from typing import Any

from detect.sources.base import Source

#: ``source.kind`` -> "module:Class". Drivers live in ``detect.drivers`` and are
#: imported only here, lazily.
SOURCES: dict[str, str] = {
    "sim": "detect.sim.source:SimSource",
    "replay": "detect.sources.replay:ReplaySource",
    "file": "detect.sources.file:GprFileSource",
    "multi": "detect.sources.multi:MultiSource",
    "sensor_head": "detect.drivers.sensor_head:SensorHeadSource",
    "ascii_emi": "detect.drivers.ascii_emi:AsciiEmiSource",
    "spidar": "detect.drivers.spidar:SpidarSource",
    "gps_nmea": "detect.drivers.gps:NmeaGpsSource",
    "gps_ubx": "detect.drivers.gps:UbxGpsSource",
}


class UnknownSourceError(ValueError):
    pass


def source_class(kind: str) -> type[Source]:
    try:
        target = SOURCES[kind]
    except KeyError:
        raise UnknownSourceError(
            f"unknown source kind '{kind}'; available: {', '.join(sorted(SOURCES))}"
        ) from None
    module_name, cls_name = target.split(":")
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as exc:
        raise UnknownSourceError(f"source kind '{kind}' is not available ({exc})") from exc
    cls = getattr(module, cls_name)
    if not (isinstance(cls, type) and issubclass(cls, Source)):
        raise TypeError(f"{target} is not a Source subclass")
    return cls


def create_source(spec: Mapping[str, Any], **extra: Any) -> Source:
    """Build a source from a config node ``{kind: ..., <constructor kwargs>}``."""
    params = dict(spec)
    kind = params.pop("kind", None)
    if not isinstance(kind, str):
        raise UnknownSourceError("source config needs a 'kind'")
    # ``threaded: true`` runs the source in its own reader thread behind a bounded queue
    # (detect.sources.threaded), so a slow consumer never stalls a serial port.
    threaded = bool(params.pop("threaded", False))
    queue_size = int(params.pop("queue_size", 256)) if threaded else 0
    cls = source_class(kind)
    params.update(extra)
    try:
        src = cls(**params)
    except TypeError as exc:
        raise UnknownSourceError(f"source '{kind}': bad parameters: {exc}") from exc
    except ValueError as exc:
        raise UnknownSourceError(f"source '{kind}': {str(exc).splitlines()[0]}") from exc
    if threaded:
        from detect.sources.threaded import ThreadedSource

        return ThreadedSource(src, queue_size=queue_size)
    return src
