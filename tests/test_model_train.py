"""Training loop: it learns, calibrates, resumes exactly, and DDP averages like one big batch."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp

from _model_synth import SPEC, synthetic_set
from detect.model.calibration import expected_calibration_error, roc_auc
from detect.model.classifier import Classifier
from detect.model.dataset import WindowSet, session_lane_id
from detect.model.nets import CalibratedNet, FusionNet, NetConfig
from detect.model.train import (
    TrainSettings,
    augment,
    batch_tensors,
    calibrate,
    exit_if_left_process_group,
    fit,
    leave_process_group,
    loss_terms,
    validation_bce,
)

NET = NetConfig(n_pos=SPEC.n_pos, gpr_samples=SPEC.gpr_samples, emi_channels=SPEC.emi_channels,
                width=4)  # fmt: skip
FULLWAVE = Path(__file__).parent / "data" / "fullwave"
FAST = TrainSettings(epochs=3, batch_size=32, lr=3e-3, progress=False, patience=10)

torch.set_num_threads(1)  # the test machine is shared; one thread avoids oversubscription


def test_learns_separable_windows_and_calibrates(tmp_path: Path) -> None:
    train, val = synthetic_set(800, 0), synthetic_set(300, 1)
    cal, test = synthetic_set(600, 2), synthetic_set(600, 3)
    net, hist = fit(NET, train, val, FAST, tmp_path)
    assert (tmp_path / "metrics.csv").read_text().count("\n") == 1 + len(hist.rows)
    assert (tmp_path / "last.pt").is_file() and (tmp_path / "best.pt").is_file()
    model = CalibratedNet(net)
    rep = calibrate(model, cal)
    assert rep["n_mine_windows"] == int(cal.is_mine.sum())
    with torch.inference_mode():
        p = model(*batch_tensors(test, np.arange(len(test)), NET))[0].numpy()
    assert roc_auc(p, test.is_mine) > 0.97
    assert expected_calibration_error(p, test.is_mine) < 0.08


def test_resume_continues_exactly(tmp_path: Path) -> None:
    train, val = synthetic_set(200, 5), synthetic_set(100, 6)
    s2 = TrainSettings(**{**FAST.__dict__, "epochs": 2})
    straight, _ = fit(NET, train, val, s2, tmp_path / "a")
    s1 = TrainSettings(**{**FAST.__dict__, "epochs": 1})
    fit(NET, train, val, s1, tmp_path / "b")
    resumed, hist = fit(NET, train, val, s2, tmp_path / "b", resume=tmp_path / "b" / "last.pt")
    assert [r["epoch"] for r in hist.rows] == [1]
    sa, sb = straight.state_dict(), resumed.state_dict()
    for k in sa:
        torch.testing.assert_close(sa[k], sb[k], msg=k)


def test_early_stopping_stops(tmp_path: Path) -> None:
    data = synthetic_set(100, 7)
    noise = synthetic_set(100, 8)
    noise.cls = np.random.default_rng(0).permutation(noise.cls)  # unlearnable validation
    s = TrainSettings(**{**FAST.__dict__, "epochs": 30, "patience": 2})
    _, hist = fit(NET, data, noise, s, None)
    assert hist.stopped_early and len(hist.rows) < 30


def test_mirror_turns_windows_end_for_end_and_off_changes_nothing() -> None:
    data = synthetic_set(16, 5)
    gpr, emi, present = batch_tensors(data, np.arange(16), NET)
    plain = TrainSettings(gain_db=0.0, time_shift_samples=0, noise=0.0, modality_dropout=0.0)

    def run(mirror: float) -> tuple[torch.Tensor, torch.Tensor]:
        s = TrainSettings(**{**plain.__dict__, "mirror": mirror})
        g, e, _ = augment(gpr, emi, present, s, torch.Generator().manual_seed(0), 1.0,
                          torch.ones(NET.emi_channels))  # fmt: skip
        return g, e

    g0, e0 = run(0.0)
    torch.testing.assert_close(g0, gpr)
    torch.testing.assert_close(e0, emi)
    g1, e1 = run(1.0)
    torch.testing.assert_close(g1, gpr.flip(1))
    torch.testing.assert_close(e1, emi.flip(1))
    gh, _ = run(0.5)
    turned = [torch.allclose(gh[i], gpr[i].flip(0), equal_nan=True) for i in range(16)]
    kept = [torch.allclose(gh[i], gpr[i], equal_nan=True) for i in range(16)]
    assert all(a or b for a, b in zip(turned, kept, strict=True)) and 0 < sum(turned) < 16


def _bce(z: np.ndarray, y: np.ndarray) -> float:
    p = 1 / (1 + np.exp(-z.astype(np.float64)))
    return float(-np.mean(y * np.log(p) + (1 - y) * np.log(1 - p)))


def test_validation_loss_weighs_recordings_as_much_as_the_simulator() -> None:
    rng = np.random.default_rng(3)
    z = rng.normal(0, 2, 1000).astype(np.float32)
    y = rng.random(1000) < 0.2
    lane = np.arange(1000) + 5_000_000_000  # simulated lanes: seed * 10_000 + lane
    sim_only = validation_bce(z, y, lane)
    assert list(sim_only) == ["sim"] and sim_only["sim"] == pytest.approx(_bce(z, y), rel=1e-5)
    lane[-50:] = [
        session_lane_id(i % 3) for i in range(50)
    ]  # 50 recorded windows among 950 simulated
    parts = validation_bce(z, y, lane)
    assert parts["sim"] == pytest.approx(_bce(z[:950], y[:950]), rel=1e-5)
    assert parts["rec"] == pytest.approx(_bce(z[950:], y[950:]), rel=1e-5)
    # a model that gets the 50 recorded windows badly wrong loses half its score, not 5 %
    z_bad = z.copy()
    z_bad[950:] = np.where(y[950:], -6.0, 6.0)
    assert validation_bce(z_bad, y, lane)["rec"] > 5.0


def test_early_stopping_keeps_the_epoch_that_holds_on_the_recordings() -> None:
    """Validation = one learnable simulated set + an unlearnable 'recorded' one whose loss
    grows as training fits: the kept epoch must be earlier than on the simulated set alone."""
    data = synthetic_set(200, 21)
    sim_val = synthetic_set(100, 22)
    rec = synthetic_set(100, 23)
    rec.cls = np.random.default_rng(1).permutation(rec.cls)
    rec.lane = np.array([session_lane_id(i) for i in range(len(rec))], dtype=np.int64)
    s = TrainSettings(**{**FAST.__dict__, "epochs": 8, "patience": 8})
    _, alone = fit(NET, data, sim_val, s, None)
    _, both = fit(NET, data, WindowSet.concat([sim_val, rec]), s, None)
    assert [r["val_bce"] for r in both.rows] == pytest.approx(
        [0.5 * (r["val_bce_sim"] + r["val_bce_rec"]) for r in both.rows]
    )
    assert [r["val_bce_sim"] for r in both.rows] == pytest.approx(
        [r["val_bce"] for r in alone.rows], rel=1e-5
    )
    assert both.best_epoch == int(np.argmin([r["val_bce"] for r in both.rows]))


def _fixture_sessions(folder: Path) -> list[Path]:
    """The committed full-wave fixture (a PMN in moist sand, the same soil empty) as
    labelled GPR-only sessions, as ``scripts/fullwave_set.py`` exports them."""
    from detect.sim.fdtd.run import write_session
    from detect.sim.fdtd.scenes import fixture_jobs

    jobs = fixture_jobs()
    paths = []
    for name in ("pmn_moist_sand", "empty_moist_sand"):
        paths.append(folder / f"{name}.h5")
        write_session(paths[-1], FULLWAVE / f"{name}.h5", jobs[name].settings, jobs[name])
        shutil.copyfile(FULLWAVE / f"{name}_truth.csv", folder / f"{name}_truth.csv")
    return paths


def test_recorded_windows_get_session_lane_ids(tmp_path: Path) -> None:
    from detect.config import compose
    from detect.model.workflow import _session_set

    ws = _session_set(compose([]), [str(p) for p in _fixture_sessions(tmp_path)])
    assert set(np.unique(ws.lane)) == {session_lane_id(0), session_lane_id(1)}
    assert ws.is_mine[ws.lane == session_lane_id(0)].any()
    assert not ws.is_mine[ws.lane == session_lane_id(1)].any()


def test_train_task_stops_on_simulated_and_recorded_validation_together(tmp_path: Path) -> None:
    from detect.app.train import train_task
    from detect.config import compose

    rec = [str(p) for p in _fixture_sessions(tmp_path)]
    cfg = compose(["experiment=smoke", "train.variants=[gpr_only]", "train.threads=1",
                   f"train.out_dir={tmp_path / 'run'}", f"train.models_dir={tmp_path / 'models'}",
                   f"train.val_sessions=[{','.join(rec)}]"])  # fmt: skip
    assert train_task(cfg) == 0
    card = Classifier.load(tmp_path / "models" / "gpr_only", cfg).card
    assert card["data"]["val_sessions"] == rec
    (row,) = card["training"].get("history") or json.loads(
        (tmp_path / "run" / "gpr_only" / "history.json").read_text()
    )
    assert row["val_bce"] == pytest.approx(0.5 * (row["val_bce_sim"] + row["val_bce_rec"]))


# --------------------------------------------------------------------------- DDP


def _ddp_worker(rank: int, world: int, store: str, out: str) -> None:
    dist.init_process_group("gloo", init_method=f"file://{store}", rank=rank, world_size=world)
    torch.set_num_threads(1)
    data = synthetic_set(64, 11)
    torch.manual_seed(0)
    net = FusionNet(NET).eval()  # eval: BatchNorm/dropout identical on any split of a batch
    ddp = torch.nn.parallel.DistributedDataParallel(net)
    idx = np.arange(rank * 32, rank * 32 + 32)
    gpr, emi, present = batch_tensors(data, idx, NET)
    loss, _ = loss_terms(ddp(gpr, emi, present), torch.from_numpy(data.cls[idx]),
                         torch.from_numpy(data.depth_m[idx]), FAST, present)  # fmt: skip
    loss.backward()
    if rank == 0:
        torch.save({k: p.grad for k, p in net.named_parameters() if p.grad is not None}, out)
    # and the training loop itself runs on two ranks, ending with identical weights
    trained, _ = fit(NET, synthetic_set(128, 12), synthetic_set(64, 13),
                     TrainSettings(**{**FAST.__dict__, "epochs": 1}), None)  # fmt: skip
    flat = torch.cat([p.detach().reshape(-1) for p in trained.parameters()])
    gathered = [torch.zeros_like(flat) for _ in range(world)]
    dist.all_gather(gathered, flat)
    if rank == 0:
        torch.save({"w0": gathered[0], "w1": gathered[1]}, out + ".w")
    leave_process_group()  # as `detect train` ends a distributed run
    exit_if_left_process_group(0)


def test_ddp_two_processes_on_gloo_average_gradients(tmp_path: Path) -> None:
    out = str(tmp_path / "grads.pt")
    store = str(tmp_path / "store")
    mp.spawn(_ddp_worker, args=(2, store, out), nprocs=2, join=True)
    ddp_grads = torch.load(out, weights_only=True)
    # reference: one process, the whole batch of 64, mean loss
    data = synthetic_set(64, 11)
    torch.manual_seed(0)
    net = FusionNet(NET).eval()
    idx = np.arange(64)
    # DDP averages the per-rank mean losses; with equal halves that is the mean over 64
    # except for terms that average over a data-dependent subset (depth): compare per half
    total = 0
    for half in (idx[:32], idx[32:]):
        g, e, p = batch_tensors(data, half, NET)
        loss, _ = loss_terms(net(g, e, p), torch.from_numpy(data.cls[half]),
                             torch.from_numpy(data.depth_m[half]), FAST, p)  # fmt: skip
        total = total + loss / 2
    total.backward()
    for k, p in net.named_parameters():
        torch.testing.assert_close(ddp_grads[k], p.grad, rtol=1e-4, atol=1e-6, msg=k)
    w = torch.load(out + ".w", weights_only=True)
    torch.testing.assert_close(w["w0"], w["w1"])


@pytest.mark.slow
def test_train_task_end_to_end_on_simulated_lanes(tmp_path: Path) -> None:
    from detect.app.train import train_task
    from detect.config import compose

    cfg = compose(["experiment=smoke", f"train.out_dir={tmp_path / 'run'}",
                   f"train.models_dir={tmp_path / 'models'}", "train.threads=1"])  # fmt: skip
    assert train_task(cfg) == 0
    clf = Classifier.load(tmp_path / "models" / "fused", cfg)
    assert clf.card["data"]["train_lanes"] == 2


# --------------------------------------------------------------------------- device


def test_device_names_resolve_and_bad_ones_say_why(monkeypatch: pytest.MonkeyPatch) -> None:
    from detect.model.train import resolve_device

    assert resolve_device("cpu") == torch.device("cpu")
    if not torch.cuda.is_available():
        assert resolve_device("auto") == torch.device("cpu")
        with pytest.raises(ValueError, match="sees no CUDA GPU"):
            resolve_device("cuda")
    with pytest.raises(ValueError, match="auto, cpu, cuda or cuda:N"):
        resolve_device("gpu")
    # under torchrun a bare cuda means this rank's GPU
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 4)
    monkeypatch.setenv("LOCAL_RANK", "2")
    assert resolve_device("auto") == torch.device("cuda", 2)
    assert resolve_device("cuda:1") == torch.device("cuda", 1)
    with pytest.raises(ValueError, match="only 4 CUDA"):
        resolve_device("cuda:7")
    monkeypatch.setenv("WORLD_SIZE", "2")  # one GPU named for every rank would clash
    with pytest.raises(ValueError, match="every rank would use that one GPU"):
        resolve_device("cuda:1")
    assert resolve_device("cuda") == torch.device("cuda", 2)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA GPU")
def test_training_on_the_gpu_learns_like_the_cpu(tmp_path: Path) -> None:
    train, val, test = synthetic_set(800, 0), synthetic_set(300, 1), synthetic_set(600, 3)
    cpu, _ = fit(NET, train, val, FAST, None)
    gpu, _ = fit(NET, train, val, TrainSettings(**{**FAST.__dict__, "device": "cuda"}), None)
    assert next(gpu.parameters()).device.type == "cpu"  # handed back for calibration
    aucs = []
    for net in (cpu, gpu):
        with torch.inference_mode():
            z = net.eval()(*batch_tensors(test, np.arange(len(test)), NET))[0].numpy()
        aucs.append(roc_auc(z, test.is_mine))
    assert min(aucs) > 0.97 and abs(aucs[0] - aucs[1]) < 0.02
