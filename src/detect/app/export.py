"""``detect export OUT.onnx [model.name=...]``: a shipped model as ONNX, its card and input
contract in the file's metadata (:func:`detect.api.export_onnx`)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from detect.api import export_onnx
from detect.app.common import command
from detect.errors import EXIT_UNAVAILABLE, EXIT_USAGE, DetectError, ModelError, TaskError


@command
def export_task(cfg: Any) -> int:
    """``detect export OUT.onnx [model.name=...]``: the command wrapper of :func:`export_onnx`
    (it maps API errors to exit codes and prints one line)."""
    out = cfg.output.get("path")
    if not out or not str(out).lower().endswith(".onnx"):
        raise TaskError(f"export needs an output file ending in .onnx, got {out!r}", EXIT_USAGE)
    out_path = Path(str(out))
    if out_path.exists():
        raise TaskError(f"{out_path} exists: remove it or choose another file", EXIT_USAGE)
    name = str(cfg.model.name)
    try:
        res = export_onnx(name, out_path)
    except ModelError as exc:
        raise TaskError(str(exc), EXIT_UNAVAILABLE) from exc
    except DetectError as exc:
        code = EXIT_UNAVAILABLE if "extra" in str(exc) else EXIT_USAGE
        raise TaskError(str(exc), code) from exc
    print(
        f"wrote {res.path}: model '{name}', ONNX vs PyTorch max |difference| "
        f"{res.max_abs_diff:.2g} ({res.runtime}); its DSP and windowing: docs/api.md",
        flush=True,
    )
    return 0
