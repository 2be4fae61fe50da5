"""Ensembles: the mean of separately trained models, shipped, loaded and exported as one."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors.torch import load_file

from _model_synth import SPEC
from detect.model.card import ModelCardError, read_card, write_card
from detect.model.classifier import Classifier, save_model
from detect.model.ensemble import combine
from detect.model.nets import CalibratedNet, EnsembleNet, FusionNet, NetConfig

torch.set_num_threads(1)  # the test machine is shared; one thread avoids oversubscription

CFG = NetConfig(n_pos=SPEC.n_pos, gpr_samples=SPEC.gpr_samples, emi_channels=SPEC.emi_channels,
                use_emi=False)  # fmt: skip
PRE = {"dsp": {"gpr": [{"step": "dewow", "window_ns": 2.0}], "emi": []}, "window": SPEC.to_dict()}


def _member(tmp: Path, seed: int, a: float, b: float, pre: dict | None = None) -> Path:
    torch.manual_seed(seed)
    m = CalibratedNet(FusionNet(CFG))
    m.platt[1] = torch.tensor([a, b])
    m.branch_platt[0] = torch.tensor([a, -b])
    m.class_temperature.fill_(1.0 + seed / 4)
    card = {"name": "gpr_only", "preprocessing": pre or PRE, "data": {"train_seed": seed},
            "training": {"best_epoch": seed, "train_seconds": 1.0},
            "calibration": {"platt_gpr_only": [a, b]}}  # fmt: skip
    save_model(tmp / f"m{seed}", m.eval(), card)
    return tmp / f"m{seed}"


def _windows(
    n: int, seed: int = 0, n_pos: int = SPEC.n_pos, n_samples: int = SPEC.gpr_samples
) -> np.ndarray:
    g = np.random.default_rng(seed).standard_normal((n, n_pos, n_samples)).astype(np.float32)
    g[1] = np.nan  # no GPR data at all: not scored
    g[2, :, n_samples // 2 :] = np.nan  # a short record: scored with the mask
    return g


def test_an_ensemble_scores_the_mean_of_its_members(tmp_path: Path) -> None:
    dirs = [_member(tmp_path, s, a, b) for s, a, b in ((0, 1.2, -0.4), (1, 0.7, 0.3), (2, 2.0, 0))]
    card = combine(dirs, tmp_path / "ens")
    assert card["ensemble"]["members"] == 3
    assert [m["train_seed"] for m in card["ensemble"]["member_cards"]] == [0, 1, 2]
    assert [m["weights_sha256"] for m in card["ensemble"]["member_cards"]] == [
        read_card(d)["weights"]["sha256"] for d in dirs
    ]
    md = (tmp_path / "ens" / "card.md").read_text()
    assert "## Ensemble" in md and f"`{read_card(dirs[2])['weights']['sha256'][:12]}`" in md
    ens = Classifier.load(tmp_path / "ens")
    assert isinstance(ens.model, EnsembleNet) and len(ens.model.members) == 3
    g = _windows(12)
    got = ens.predict(g, None)
    preds = [Classifier.load(d).predict(g, None) for d in dirs]
    np.testing.assert_allclose(got.p_mine, np.mean([p.p_mine for p in preds], axis=0), rtol=1e-5)
    np.testing.assert_allclose(got.class_probs, np.mean([p.class_probs for p in preds], axis=0),
                               rtol=1e-5)  # fmt: skip
    np.testing.assert_allclose(got.depth_m, np.mean([p.depth_m for p in preds], axis=0), rtol=1e-5)
    mean_gpr = np.mean([p.branch_scores["gpr"] for p in preds], axis=0)
    np.testing.assert_allclose(got.branch_scores["gpr"], mean_gpr, rtol=1e-5)
    assert np.isnan(got.p_mine[1]) and np.isfinite(got.p_mine[2])
    # the members really differ, so the mean is not any one of them
    assert np.ptp([p.p_mine[0] for p in preds]) > 1e-3
    assert got.class_probs[0].sum() == pytest.approx(1.0, abs=1e-5)


def test_one_member_is_that_model(tmp_path: Path) -> None:
    d = _member(tmp_path, 4, 0.9, 0.1)
    combine([d], tmp_path / "one")
    g = _windows(5, 1)
    np.testing.assert_allclose(Classifier.load(tmp_path / "one").predict(g, None).p_mine,
                               Classifier.load(d).predict(g, None).p_mine, rtol=1e-6)  # fmt: skip


def test_members_that_differ_in_preprocessing_are_refused(tmp_path: Path) -> None:
    other = {**PRE, "dsp": {"gpr": [{"step": "dewow", "window_ns": 3.0}], "emi": []}}
    dirs = [_member(tmp_path, 0, 1.0, 0.0), _member(tmp_path, 1, 1.0, 0.0, other)]
    with pytest.raises(ModelCardError, match=r"preprocessing\.dsp\.gpr\[0\]\.window_ns"):
        combine(dirs, tmp_path / "ens")


def test_a_card_whose_member_count_does_not_fit_the_weights_is_refused(tmp_path: Path) -> None:
    dirs = [_member(tmp_path, s, 1.0, 0.0) for s in (0, 1)]
    combine(dirs, tmp_path / "ens")
    card = read_card(tmp_path / "ens")
    for n, why in ((3, "card says an ensemble of 3, the weights hold an ensemble of 2"),
                   (64, "card says an ensemble of 64"),  # refused before 64 networks are built
                   (0, r"ensemble\.members' must be a whole number from 1 to 64, got 0"),
                   (50_000, "got 50000")):  # fmt: skip
        card["ensemble"]["members"] = n
        write_card(tmp_path / "ens", card)
        with pytest.raises(ModelCardError, match=why):
            Classifier.load(tmp_path / "ens")
    card["ensemble"] = "x"
    write_card(tmp_path / "ens", card)  # the card's text is written, whatever the entry
    with pytest.raises(ModelCardError, match="got 'x'"):
        Classifier.load(tmp_path / "ens")
    del card["ensemble"]
    write_card(tmp_path / "ens", card)
    with pytest.raises(ModelCardError, match="card says one network, the weights hold an"):
        Classifier.load(tmp_path / "ens")


def test_an_ensemble_exports_with_the_same_scores(tmp_path: Path) -> None:
    pytest.importorskip("onnx", reason="ONNX export needs the 'export' extra")
    from detect.model.export import example_inputs, export_all, run_onnx, run_torchscript

    dirs = [_member(tmp_path, s, 1.0 + s / 3, 0.1 * s) for s in (0, 1)]
    combine(dirs, tmp_path / "ens")
    model = Classifier.load(tmp_path / "ens").model
    diffs = export_all(model, tmp_path / "export")
    assert diffs["torchscript_max_abs_diff"] < 1e-5 and diffs["onnx_max_abs_diff"] < 1e-5
    inputs = example_inputs(model, n=5, seed=3)
    with torch.inference_mode():
        ref = [o.numpy() for o in model(*inputs)]
    for got in (run_onnx(tmp_path / "export" / "model.onnx", inputs),
                run_torchscript(tmp_path / "export" / "model.ts", inputs)):  # fmt: skip
        for a, b in zip(ref, got, strict=True):
            np.testing.assert_allclose(a, b, atol=1e-5)


def test_train_members_are_the_runs_with_the_next_seeds(tmp_path: Path) -> None:
    """``train.members=2`` ships the mean of the run itself and the run with seed + 1: the
    member weights are bit-identical to two plain runs, and the shipped model scores their mean.
    """
    from detect.app.train import train_task
    from detect.config import compose

    cache = tmp_path / "cache"

    def run(name: str, *extra: str) -> Path:
        out = tmp_path / name
        cfg = compose(["experiment=smoke", "train.variants=[gpr_only]", "train.threads=1",
                       f"train.out_dir={out}", f"train.models_dir={out / 'models'}",
                       f"train.cache_dir={cache}", *extra])  # fmt: skip
        assert train_task(cfg) == 0
        return out

    ens = run("ens", "train.members=2")
    plain = [run("seed0"), run("seed1", "train.seed=1")]
    for i, p in enumerate(plain):
        a = load_file(str(ens / "gpr_only" / f"member{i}" / "model" / "weights.safetensors"))
        b = load_file(str(p / "models" / "gpr_only" / "weights.safetensors"))
        assert a.keys() == b.keys()
        for k in a:
            torch.testing.assert_close(a[k], b[k], rtol=0, atol=0, msg=k)
    card = json.loads((ens / "models" / "gpr_only" / "card.json").read_text())
    assert card["ensemble"]["members"] == 2 and card["data"]["train_seed"] == [0, 1]
    shipped = Classifier.load(ens / "models" / "gpr_only")
    g = _windows(8, 2, shipped.spec.n_pos, shipped.spec.gpr_samples)
    got = shipped.predict(g, None).p_mine
    each = [Classifier.load(p / "models" / "gpr_only").predict(g, None).p_mine for p in plain]
    np.testing.assert_allclose(got, np.mean(each, axis=0), rtol=1e-5)
