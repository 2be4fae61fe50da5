"""TorchScript and ONNX exports give the original model's scores."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from detect.model.export import (
    example_inputs,
    export_all,
    run_onnx,
    run_torchscript,
)
from detect.model.nets import CalibratedNet, FusionNet, NetConfig

onnx = pytest.importorskip("onnx", reason="ONNX export needs the 'export' extra")

torch.set_num_threads(1)  # the test machine is shared; one thread avoids oversubscription


def test_exports_match_the_original(tmp_path: Path) -> None:
    torch.manual_seed(0)
    m = CalibratedNet(FusionNet(NetConfig(n_pos=16, gpr_samples=32, emi_channels=4))).eval()
    m.platt[1] = torch.tensor([0.7, 0.2])
    diffs = export_all(m, tmp_path)
    assert diffs["torchscript_max_abs_diff"] < 1e-5
    assert diffs["onnx_max_abs_diff"] < 1e-5
    onnx.checker.check_model(str(tmp_path / "model.onnx"))
    # a batch size other than the traced one, with mixed sensor presence
    inputs = example_inputs(m, n=5, seed=3)
    with torch.inference_mode():
        ref = [o.numpy() for o in m(*inputs)]
    for got in (run_onnx(tmp_path / "model.onnx", inputs),
                run_torchscript(tmp_path / "model.ts", inputs)):  # fmt: skip
        for a, b in zip(ref, got, strict=True):
            np.testing.assert_allclose(a, b, atol=1e-5)
