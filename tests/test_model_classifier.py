"""Network wiring, shipping (safetensors + card + hash), refusal of mismatches, predict."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from _model_synth import SPEC
from detect.config import compose
from detect.model.card import ModelCardError, PreprocessingMismatch, preprocessing_from_cfg
from detect.model.classifier import Classifier, save_model
from detect.model.nets import CalibratedNet, FusionNet, NetConfig

CFG = NetConfig(n_pos=SPEC.n_pos, gpr_samples=SPEC.gpr_samples, emi_channels=SPEC.emi_channels)

torch.set_num_threads(1)  # the test machine is shared; one thread avoids oversubscription


def _model(use_gpr: bool = True, use_emi: bool = True, seed: int = 0) -> CalibratedNet:
    torch.manual_seed(seed)
    m = CalibratedNet(FusionNet(NetConfig(**{**CFG.to_dict(), "use_gpr": use_gpr,
                                              "use_emi": use_emi})))  # fmt: skip
    m.platt[0] = torch.tensor([0.8, -0.3])
    return m.eval()


def _inputs(n: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    return (
        rng.standard_normal((n, SPEC.n_pos, SPEC.gpr_samples)).astype(np.float32),
        rng.standard_normal((n, SPEC.n_pos, SPEC.emi_channels)).astype(np.float32),
    )


def _preproc() -> dict:
    return {"dsp": {"gpr": [{"step": "dewow", "window_ns": 2.0}], "emi": []},
            "window": SPEC.to_dict()}  # fmt: skip


def _ship(tmp: Path, model: CalibratedNet, name: str = "m") -> Path:
    save_model(tmp / name, model, {"name": name, "preprocessing": _preproc()})
    return tmp / name


def test_missing_sensor_input_is_ignored() -> None:
    m = _model()
    g, e = _inputs(6)
    present = torch.tensor([[1.0, 0.0]] * 6)
    out1 = m(torch.from_numpy(g), torch.from_numpy(e), present)
    out2 = m(torch.from_numpy(g), torch.from_numpy(e * 100 + 5), present)
    for a, b in zip(out1[:3], out2[:3], strict=True):
        torch.testing.assert_close(a, b)
    # the GPR branch score never depends on EMI
    both = m(torch.from_numpy(g), torch.from_numpy(e * 3), torch.ones(6, 2))
    torch.testing.assert_close(both[3], out1[3])
    assert both[1].sum(1).sub(1).abs().max() < 1e-5


def test_roundtrip_gives_identical_scores(tmp_path: Path) -> None:
    m = _model()
    d = _ship(tmp_path, m)
    card = json.loads((d / "card.json").read_text())
    assert card["weights"]["bytes"] < 10e6 and len(card["weights"]["sha256"]) == 64
    assert (d / "SHA256SUMS").read_text().split()[0] == card["weights"]["sha256"]
    clf = Classifier.load(d)
    g, e = _inputs(10)
    pred = clf.predict(g, e)
    with torch.inference_mode():
        ref = m(torch.from_numpy(g), torch.from_numpy(e), torch.ones(10, 2))
    np.testing.assert_allclose(pred.p_mine, ref[0].numpy(), rtol=1e-6)
    np.testing.assert_allclose(pred.class_probs, ref[1].numpy(), rtol=1e-6)
    np.testing.assert_allclose(pred.branch_scores["emi"], ref[4].numpy(), rtol=1e-6)
    assert pred.present is not None and pred.present.all()


def test_nan_patches_mean_that_sensor_is_absent(tmp_path: Path) -> None:
    clf = Classifier.load(_ship(tmp_path, _model()))
    g, e = _inputs(4)
    e_bad = e.copy()
    e_bad[1, 3, 0] = np.nan
    mixed = clf.predict(g, e_bad)
    gpr_only = clf.predict(g, None)
    assert mixed.p_mine[1] == pytest.approx(gpr_only.p_mine[1], rel=1e-6)
    assert np.isnan(mixed.branch_scores["emi"][1]) and np.isfinite(mixed.branch_scores["emi"][0])
    assert np.isnan(gpr_only.branch_scores["emi"]).all()
    # neither sensor: no score at all, never a confident "clear"
    g_bad = g.copy()
    g_bad[1] = np.nan
    none = clf.predict(g_bad, e_bad)
    assert np.isnan(none.p_mine[1]) and np.isfinite(none.p_mine[0])


def test_single_sensor_model_and_wrong_input(tmp_path: Path) -> None:
    clf = Classifier.load(_ship(tmp_path, _model(use_emi=False), "g"))
    g, e = _inputs(3)
    assert clf.predict(g, e).p_mine == pytest.approx(clf.predict(g, None).p_mine)
    with pytest.raises(ValueError, match="uses GPR but only EMI"):
        clf.predict(None, e)
    with pytest.raises(ValueError, match=r"GPR windows must have shape \(n, 16, 32\)"):
        clf.predict(g[:, :, :10], None)


def test_tampered_weights_are_refused(tmp_path: Path) -> None:
    d = _ship(tmp_path, _model())
    w = d / "weights.safetensors"
    raw = bytearray(w.read_bytes())
    raw[-5] ^= 0xFF
    w.write_bytes(bytes(raw))
    with pytest.raises(ModelCardError, match=r"does not match the card .*refusing to load"):
        Classifier.load(d)


def test_pickled_weights_never_load(tmp_path: Path) -> None:
    d = _ship(tmp_path, _model())
    torch.save({"x": torch.ones(1)}, d / "weights.safetensors")  # a pickle in disguise
    card = json.loads((d / "card.json").read_text())
    from detect.model.card import sha256_file

    card["weights"]["sha256"] = sha256_file(d / "weights.safetensors")
    (d / "card.json").write_text(json.dumps(card))
    with pytest.raises(ModelCardError, match="cannot read weights"):
        Classifier.load(d)


def test_mismatched_preprocessing_is_refused_with_one_line(tmp_path: Path) -> None:
    d = _ship(tmp_path, _model())
    cfg = compose([])  # the default chain and window differ from this card's
    with pytest.raises(PreprocessingMismatch) as info:
        Classifier.load(d, cfg)
    msg = str(info.value)
    assert "\n" not in msg and "preprocessing." in msg and "model 'm'" in msg


def test_matching_preprocessing_loads(tmp_path: Path) -> None:
    cfg = compose([])
    m = CalibratedNet(FusionNet(NetConfig(n_pos=32, gpr_samples=cfg.window.gpr_samples,
                                          emi_channels=cfg.window.emi_channels)))  # fmt: skip
    save_model(tmp_path / "ok", m, {"name": "ok", "preprocessing": preprocessing_from_cfg(cfg)})
    assert Classifier.load(tmp_path / "ok", cfg).spec.n_pos == 32
    with pytest.raises(PreprocessingMismatch, match="grid_m"):
        Classifier.load(tmp_path / "ok", compose(["window.grid_m=0.01"]))


def test_unknown_model_name_lists_what_exists() -> None:
    with pytest.raises(ModelCardError, match="no model 'nonexistent'"):
        Classifier.load("nonexistent")


def test_inference_device_follows_model_device(monkeypatch: pytest.MonkeyPatch, caplog) -> None:
    from detect.model.classifier import inference_device

    assert inference_device("cpu") == "cpu"
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert inference_device("auto") == "cpu"
    with caplog.at_level("WARNING"):
        assert inference_device("cuda") == "cpu"  # a laptop without a GPU still scores
    assert "sees no CUDA GPU" in caplog.text
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    assert inference_device("auto") == "cuda"


@pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA GPU")
def test_scores_on_the_gpu_match_the_cpu(tmp_path: Path) -> None:
    d = _ship(tmp_path, _model())
    g, e = _inputs(64)
    cpu = Classifier.load(d).predict(g, e)
    gpu = Classifier(Classifier.load(d).model, Classifier.load(d).card, "m", "cuda").predict(g, e)
    np.testing.assert_allclose(gpu.p_mine, cpu.p_mine, rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(gpu.class_probs, cpu.class_probs, rtol=1e-4, atol=1e-5)
