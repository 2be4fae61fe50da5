"""detect: sensor-fusion landmine detection (GPR + metal detector + GPS).

The public Python API (docs/api.md)::

    import detect
    f = detect.read_gpr("FILE.DZT")          # any supported GPR file -> GprFile
    res = detect.scan("lane.h5")             # the pipeline on a file -> ScanResult
    with detect.open_session("session.h5") as rd: ...
    model = detect.load_model("fused")       # a shipped model, with its card
    detect.export_onnx(model, "fused.onnx")  # ONNX, with the card in its metadata

The names are loaded on first use (module ``__getattr__``), so ``import detect`` is cheap
and torch is imported only once a model is used.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from detect._version import __version__

if TYPE_CHECKING:
    from detect.api import (
        DetectError,
        Detector,
        GprFile,
        InputError,
        ModelError,
        ModelWindows,
        OnnxExport,
        ProcessingError,
        ScanResult,
        SessionReader,
        SettingsError,
        compose,
        export_onnx,
        load_model,
        open_session,
        read_gpr,
        scan,
    )

__all__ = [
    "DetectError",
    "Detector",
    "GprFile",
    "InputError",
    "ModelError",
    "ModelWindows",
    "OnnxExport",
    "ProcessingError",
    "ScanResult",
    "SessionReader",
    "SettingsError",
    "__version__",
    "compose",
    "export_onnx",
    "load_model",
    "open_session",
    "read_gpr",
    "scan",
]

#: The public names, all from :mod:`detect.api`.
_API = frozenset(__all__) - {"__version__"}


def __getattr__(name: str) -> Any:
    if name in _API:
        from detect import api

        value = getattr(api, name)
        globals()[name] = value  # later look-ups skip this function
        return value
    raise AttributeError(f"module 'detect' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted({*globals(), *_API})
