"""Export a calibrated model to TorchScript and ONNX, and check the exports agree with it.

The exported graph is the whole shipped network (:class:`~detect.model.nets.CalibratedNet`, or
an :class:`~detect.model.nets.EnsembleNet` of them): inputs
``gpr (B, n_pos, n_samples)``, ``emi (B, n_pos, n_channels)``, ``present (B, 2)``; outputs
``p_mine, class_probs, depth_m, p_gpr, p_emi``. Without onnxruntime the ONNX file is checked
with onnx's own reference evaluator.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import numpy as np
import torch

from detect.model.nets import ShippedNet

OUTPUT_NAMES = ("p_mine", "class_probs", "depth_m", "p_gpr", "p_emi")
INPUT_NAMES = ("gpr", "emi", "present")


def example_inputs(model: ShippedNet, n: int = 4, seed: int = 0) -> tuple[torch.Tensor, ...]:
    cfg = model.cfg
    g = torch.Generator().manual_seed(seed)
    gpr = torch.randn(n, cfg.n_pos, cfg.gpr_samples, generator=g)
    emi = torch.randn(n, cfg.n_pos, cfg.emi_channels, generator=g)
    present = torch.ones(n, 2)
    if n > 2:
        present[1, 1] = 0.0
        present[2, 0] = 0.0
    if n > 3 and cfg.gpr_mask:  # a short record and a scan's end: the validity mask's path
        gpr[3, :, cfg.gpr_samples // 3 :] = float("nan")
        gpr[3, : cfg.n_pos // 4] = float("nan")
    return gpr, emi, present


def to_torchscript(model: ShippedNet, path: Path) -> Path:
    model = model.eval()
    scripted = torch.jit.trace(model, example_inputs(model), check_trace=False)
    scripted = torch.jit.freeze(scripted)
    path = Path(path)
    scripted.save(str(path))
    return path


def to_onnx(model: ShippedNet, path: Path, metadata: Mapping[str, str] | None = None) -> Path:
    """Write the ONNX graph (batch size dynamic); ``metadata`` goes into the file's
    ``metadata_props`` (:func:`detect.api.export_onnx` puts the model card there)."""
    model = model.eval()
    path = Path(path)
    batch = torch.export.Dim("batch", min=1, max=65536)
    torch.onnx.export(
        model,
        example_inputs(model),
        str(path),
        input_names=list(INPUT_NAMES),
        output_names=list(OUTPUT_NAMES),
        dynamic_shapes={"gpr": {0: batch}, "emi": {0: batch}, "present": {0: batch}},
        dynamo=True,
        external_data=False,
        verbose=False,  # a library call prints nothing
    )
    if metadata:
        import onnx

        proto = onnx.load(str(path))
        for key, value in metadata.items():
            entry = proto.metadata_props.add()
            entry.key, entry.value = str(key), str(value)
        onnx.save(proto, str(path))
    return path


def run_torchscript(path: Path, inputs: tuple[torch.Tensor, ...]) -> list[np.ndarray]:
    module = torch.jit.load(str(path))
    with torch.inference_mode():
        return [o.numpy() for o in module(*inputs)]


def run_onnx(path: Path, inputs: tuple[torch.Tensor, ...]) -> list[np.ndarray]:
    """Run the ONNX graph with onnxruntime when installed, else onnx's reference evaluator."""
    feeds = {name: t.numpy() for name, t in zip(INPUT_NAMES, inputs, strict=True)}
    try:
        import onnxruntime as ort

        sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
        names = {i.name for i in sess.get_inputs()}
        return list(sess.run(list(OUTPUT_NAMES), {k: v for k, v in feeds.items() if k in names}))
    except ImportError:
        import onnx
        from onnx.reference import ReferenceEvaluator

        proto = onnx.load(str(path))
        names = {i.name for i in proto.graph.input}
        ev = ReferenceEvaluator(proto)
        return list(ev.run(list(OUTPUT_NAMES), {k: v for k, v in feeds.items() if k in names}))


def max_abs_difference(model: ShippedNet, outputs: list[np.ndarray], inputs: tuple) -> float:
    with torch.inference_mode():
        ref = [o.numpy() for o in model.eval()(*inputs)]
    return float(max(np.max(np.abs(a - b)) for a, b in zip(ref, outputs, strict=True)))


def export_all(model: ShippedNet, directory: Path) -> dict[str, float]:
    """Write model.ts and model.onnx in ``directory``; return the max output difference of each."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    inputs = example_inputs(model, n=8, seed=1)
    ts = to_torchscript(model, directory / "model.ts")
    ox = to_onnx(model, directory / "model.onnx")
    return {
        "torchscript_max_abs_diff": max_abs_difference(model, run_torchscript(ts, inputs), inputs),
        "onnx_max_abs_diff": max_abs_difference(model, run_onnx(ox, inputs), inputs),
    }
