"""Training: loop, modality dropout, calibration, checkpoints, DDP.

The ``detect train`` task that drives it is :func:`detect.model.workflow.train_task`
(above this module: the workflow imports the loop, never the other way round).

One process per device (``torchrun --nproc_per_node N``; gloo on CPU, nccl on GPU). Each rank
trains on its shard of a per-epoch permutation (same seed on every rank), gradients are
averaged by DDP, rank 0 validates, checkpoints, logs and writes the model. Every epoch's
permutation and augmentation derive from ``seed + epoch``, so a resumed run continues exactly
where the checkpoint left it.
"""

from __future__ import annotations

import csv
import gc
import logging
import math
import os
import sys
import time
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.distributed as dist
from torch import Tensor, nn

from detect.blocks import CLASSES
from detect.config import device_name_error
from detect.model.calibration import (
    expected_calibration_error,
    fit_platt,
    fit_temperature,
    roc_auc,
)
from detect.model.dataset import WindowSet, is_recorded
from detect.model.nets import CalibratedNet, FusionNet, NetConfig
from detect.windows import EDGE_CELLS

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class TrainSettings:
    epochs: int = 10
    batch_size: int = 64
    lr: float = 1e-3
    weight_decay: float = 1e-4
    patience: int = 4
    modality_dropout: float = 0.3
    edge_drop: float = 0.0
    mirror: float = 0.0
    gain_db: float = 6.0
    time_shift_samples: int = 2
    noise: float = 0.05
    depth_weight: float = 1.0
    class_weight: float = 0.5
    branch_weight: float = 0.5
    seed: int = 0
    threads: int = 0
    progress: bool = True
    device: str = "cpu"

    @classmethod
    def from_mapping(cls, node: Mapping[str, Any]) -> TrainSettings:
        names = {f.name for f in fields(cls)}
        return cls(**{k: node[k] for k in node if k in names})


@dataclass
class History:
    rows: list[dict[str, float]] = field(default_factory=list)
    best_epoch: int = -1
    best_val: float = math.inf
    stopped_early: bool = False


# --------------------------------------------------------------------------- distributed


def world() -> tuple[int, int]:
    if dist.is_available() and dist.is_initialized():
        return dist.get_rank(), dist.get_world_size()
    return 0, 1


def resolve_device(name: str) -> torch.device:
    """``train.device``: ``auto`` (a CUDA GPU when there is one), ``cpu``, ``cuda`` or ``cuda:N``.

    Under torchrun a bare ``cuda``/``auto`` means this rank's GPU, ``cuda:$LOCAL_RANK``.
    """
    name = str(name).strip().lower()
    if name == "auto":
        name = "cuda" if torch.cuda.is_available() else "cpu"
    if name == "cpu":
        return torch.device("cpu")
    if device_name_error(name) is not None:
        raise ValueError(f"train.device must be auto, cpu, cuda or cuda:N, got {name!r}")
    if not torch.cuda.is_available():
        raise ValueError(f"train.device={name}: this PyTorch sees no CUDA GPU (use cpu or auto)")
    if ":" in name and int(os.environ.get("WORLD_SIZE", "1")) > 1:
        raise ValueError(
            f"train.device={name}: under torchrun every rank would use that one GPU; "
            "use cuda or auto (each rank takes cuda:$LOCAL_RANK)"
        )
    index = int(name[5:]) if ":" in name else int(os.environ.get("LOCAL_RANK", "0"))
    if index >= torch.cuda.device_count():
        raise ValueError(f"train.device={name}: only {torch.cuda.device_count()} CUDA GPU(s)")
    return torch.device("cuda", index)


def init_distributed_from_env(device: torch.device | None = None) -> bool:
    """Join the process group torchrun describes (WORLD_SIZE > 1); return whether we did.

    NCCL when this rank trains on a GPU, gloo on the CPU: NCCL cannot reduce CPU tensors.
    """
    if int(os.environ.get("WORLD_SIZE", "1")) <= 1 or dist.is_initialized():
        return False
    on_gpu = device is not None and device.type == "cuda"
    if on_gpu:
        assert device is not None
        torch.cuda.set_device(device)
    dist.init_process_group(backend="nccl" if on_gpu else "gloo")
    return True


_left_process_group = False


def leave_process_group() -> None:
    """Wait for every rank, then tear the process group down."""
    global _left_process_group
    gc.collect()  # DDP reducers hold the group; free them while it is still alive
    dist.barrier()  # no rank tears the group down while another still talks to it
    dist.destroy_process_group()
    _left_process_group = True


def exit_if_left_process_group(code: int) -> None:
    """End a process that has left a process group without finalising the interpreter.

    Gloo's worker threads may still be destroying finished work (which holds tensors with
    Python references) after ``destroy_process_group`` returns. If the interpreter is
    finalising by then, that thread cannot take the GIL and the process aborts ("terminate
    called without an active exception", SIGABRT; seen in about one run in ten here), so a
    launcher reports a crashed rank after a good run. Everything is written and closed by
    now: flush the streams and leave at once. A process that never joined a group returns.
    """
    if not _left_process_group:
        return
    logging.shutdown()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)


# --------------------------------------------------------------------------- scales & inputs


def fit_input_scales(data: WindowSet) -> tuple[float, np.ndarray]:
    """Robust input scales: 3 x median |x| (GPR overall, EMI per gate, over the windows
    that have the EMI), never zero."""
    g = 1.0
    if data.gpr is not None:
        sample = np.abs(data.gpr[:: max(1, len(data) // 2000)].astype(np.float32))
        g = float(3.0 * np.nanmedian(sample)) if np.isfinite(sample).any() else 1.0
        g = g if math.isfinite(g) and g > 0 else 1.0
    c = data.emi.shape[2] if data.emi is not None else 1
    e = np.ones(c, dtype=np.float32)
    if data.emi is not None:
        sample = np.abs(data.emi[:: max(1, len(data) // 2000)])
        ok = np.isfinite(sample).all(axis=(1, 2))  # windows without the EMI are NaN
        if ok.any():
            e = (3.0 * np.median(sample[ok], axis=(0, 1))).astype(np.float32)
        e[~(e > 0)] = 1.0
    return g, e


def batch_tensors(
    data: WindowSet, idx: np.ndarray, cfg: NetConfig
) -> tuple[Tensor, Tensor, Tensor]:
    n = idx.size
    if data.gpr is not None and cfg.use_gpr:
        gpr = torch.from_numpy(data.gpr[idx].astype(np.float32))
    else:
        gpr = torch.zeros(n, cfg.n_pos, cfg.gpr_samples)
    if data.emi is not None and cfg.use_emi:
        emi = torch.from_numpy(data.emi[idx].astype(np.float32))
    else:
        emi = torch.zeros(n, cfg.n_pos, cfg.emi_channels)
    present = torch.stack(
        [
            torch.full((n,), float(cfg.use_gpr and data.gpr is not None)),
            torch.full((n,), float(cfg.use_emi and data.emi is not None)),
        ],
        dim=1,
    )
    # a window at a scan's end: GPR keeps its NaN (the network's validity mask); EMI, which
    # has no mask, is absent there, as the classifier treats it
    emi_ok = torch.isfinite(emi).all(dim=2).all(dim=1)
    present[:, 1] = present[:, 1] * emi_ok.to(present.dtype)
    emi = torch.where(emi_ok[:, None, None], emi, torch.zeros_like(emi))
    if not cfg.gpr_mask:
        gpr_ok = torch.isfinite(gpr).all(dim=2).all(dim=1)
        present[:, 0] = present[:, 0] * gpr_ok.to(present.dtype)
        gpr = torch.where(gpr_ok[:, None, None], gpr, torch.zeros_like(gpr))
    return gpr, emi, present


def drop_edges(
    gpr: Tensor, share: float, gen: torch.Generator, keep_half: int = EDGE_CELLS
) -> Tensor:
    """A short scan's window: for ``share`` of the windows, the GPR positions beyond a random
    along-track edge (on a random side, at least ``keep_half`` positions from the centre)
    become NaN, as where a sweep ends (the network's validity mask)."""
    n, n_pos = gpr.shape[0], gpr.shape[1]
    half = n_pos // 2
    cut = torch.rand(n, generator=gen) < share
    if not bool(cut.any()) or half <= keep_half:
        return gpr
    depth = torch.randint(1, half - keep_half + 1, (n,), generator=gen)
    left = torch.rand(n, generator=gen) < 0.5
    pos = torch.arange(n_pos)[None, :]
    gone = torch.where(left[:, None], pos < depth[:, None], pos >= n_pos - depth[:, None])
    gone &= cut[:, None]
    return gpr.masked_fill(gone[:, :, None], float("nan"))


def augment(
    gpr: Tensor,
    emi: Tensor,
    present: Tensor,
    s: TrainSettings,
    gen: torch.Generator,
    gpr_scale: float,
    emi_scale: Tensor,
) -> tuple[Tensor, Tensor, Tensor]:
    """Window-level augmentation: mirror, gain, time shift, noise; modality dropout on
    present flags.

    ``mirror``: the share of windows turned end for end along the track. Ground scanned the
    other way round is as real as the ground itself (the window's label sits at its centre),
    so each recorded window counts twice and nothing the network learns may depend on the
    walking direction. Lane-level variety (soil, wavelet, radar, speed and trace spacing)
    comes from the simulator; short scans from :func:`drop_edges`.
    """
    n = gpr.shape[0]
    if s.mirror > 0:
        turn = torch.rand(n, generator=gen) < s.mirror
        if bool(turn.any()):
            gpr, emi = gpr.clone(), emi.clone()
            gpr[turn] = gpr[turn].flip(1)
            emi[turn] = emi[turn].flip(1)
    gain = 10 ** ((torch.rand(n, 1, 1, generator=gen) * 2 - 1) * s.gain_db / 20)
    gpr = gpr * gain
    emi = emi * 10 ** ((torch.rand(n, 1, 1, generator=gen) * 2 - 1) * s.gain_db / 40)
    if s.time_shift_samples > 0:
        k = int(torch.randint(-s.time_shift_samples, s.time_shift_samples + 1, (1,), generator=gen))
        if k:
            gpr = torch.roll(gpr, k, dims=2)
    if s.noise > 0:
        gpr = gpr + s.noise * gpr_scale * torch.randn(gpr.shape, generator=gen)
        emi = emi + s.noise * emi_scale * torch.randn(emi.shape, generator=gen)
    if s.edge_drop > 0:
        gpr = drop_edges(gpr, s.edge_drop, gen)
    if s.modality_dropout > 0 and bool((present.sum(1) == 2).any()):
        drop = (torch.rand(n, generator=gen) < s.modality_dropout) & (present.sum(1) == 2)
        which = torch.randint(0, 2, (n,), generator=gen)
        present = present.clone()
        present[drop & (which == 0), 0] = 0.0
        present[drop & (which == 1), 1] = 0.0
    return gpr, emi, present


# --------------------------------------------------------------------------- loss & eval


def loss_terms(
    out: tuple[Tensor, ...], cls: Tensor, depth: Tensor, s: TrainSettings, present: Tensor
) -> tuple[Tensor, Tensor]:
    """(total loss, mine BCE) for a batch."""
    mine_logit, class_logits, depth_m, gpr_logit, emi_logit = out
    threat = torch.tensor([c in ("ap_mine", "at_mine", "uxo") for c in CLASSES], device=cls.device)
    y = threat[cls].float()
    bce = nn.functional.binary_cross_entropy_with_logits(mine_logit, y)
    total = bce + s.class_weight * nn.functional.cross_entropy(class_logits, cls)
    for k, logit in ((0, gpr_logit), (1, emi_logit)):
        m = present[:, k] > 0
        if bool(m.any()):
            total = total + s.branch_weight * nn.functional.binary_cross_entropy_with_logits(
                logit[m], y[m]
            )
    has_depth = (y > 0) & torch.isfinite(depth)
    if bool(has_depth.any()):
        total = total + s.depth_weight * nn.functional.smooth_l1_loss(
            depth_m[has_depth] * 10, depth[has_depth] * 10
        )
    return total, bce


@torch.no_grad()
def raw_outputs(
    net: FusionNet, data: WindowSet, present_mask: tuple[float, float] | None = None, bs: int = 512
) -> dict[str, np.ndarray]:
    """Uncalibrated outputs over a dataset (eval mode); ``present_mask`` forces sensors off."""
    was = net.training
    net.eval()
    dev = net.gpr_scale.device
    acc: dict[str, list[np.ndarray]] = {"z": [], "cls": [], "depth": [], "zg": [], "ze": []}
    for i in range(0, len(data), bs):
        idx = np.arange(i, min(i + bs, len(data)))
        gpr, emi, present = batch_tensors(data, idx, net.cfg)
        if present_mask is not None:
            present = present * torch.tensor(present_mask)
        out = net(gpr.to(dev), emi.to(dev), present.to(dev))
        for k, v in zip(acc, out, strict=True):
            acc[k].append(v.cpu().numpy())
    net.train(was)
    return {k: np.concatenate(v) if v else np.zeros(0) for k, v in acc.items()}


def calibrate(model: CalibratedNet, cal: WindowSet) -> dict[str, Any]:
    """Fit Platt scaling per sensor combination, branch Platt and class temperature on ``cal``."""
    net = model.net
    y = cal.is_mine.astype(np.float64)
    report: dict[str, Any] = {"method": "platt (per sensor combination) + class temperature"}
    combos = {"both": (0, (1.0, 1.0)), "gpr_only": (1, (1.0, 0.0)), "emi_only": (2, (0.0, 1.0))}
    if not net.use_emi:
        combos = {"gpr_only": (1, (1.0, 0.0)), "both": (0, (1.0, 0.0))}
    elif not net.use_gpr:
        combos = {"emi_only": (2, (0.0, 1.0)), "both": (0, (0.0, 1.0))}
    full = None
    for name, (row, mask) in combos.items():
        out = raw_outputs(net, cal, mask)
        a, b = fit_platt(out["z"], y)
        model.platt[row] = torch.tensor([a, b])
        report[f"platt_{name}"] = [a, b]
        if full is None:
            full = out
    assert full is not None
    if net.use_gpr:
        a, b = fit_platt(full["zg"], y)
        model.branch_platt[0] = torch.tensor([a, b])
        report["platt_branch_gpr"] = [a, b]
    if net.use_emi:
        a, b = fit_platt(full["ze"], y)
        model.branch_platt[1] = torch.tensor([a, b])
        report["platt_branch_emi"] = [a, b]
    t = fit_temperature(full["cls"], cal.cls)
    model.class_temperature.fill_(t)
    report["class_temperature"] = t
    report["n_windows"] = len(cal)
    report["n_mine_windows"] = int(y.sum())
    return report


# --------------------------------------------------------------------------- loop


def _progress(enabled: bool, total: int, desc: str) -> Any:
    if not enabled:
        return None
    from rich.progress import Progress  # lazy: only an interactive run draws a bar

    p = Progress(transient=True)
    p.start()
    p.add_task(desc, total=total)
    return p


def save_checkpoint(
    path: Path, net: FusionNet, opt: torch.optim.Optimizer, epoch: int, hist: History
) -> None:
    tmp = path.with_suffix(".tmp")
    torch.save(
        {
            "net": net.state_dict(),
            "opt": opt.state_dict(),
            "epoch": epoch,
            "best_epoch": hist.best_epoch,
            "best_val": hist.best_val,
        },
        tmp,
    )
    os.replace(tmp, path)


def validation_bce(z: np.ndarray, y: np.ndarray, lane: np.ndarray) -> dict[str, float]:
    """Mine BCE of the early-stopping windows, per domain: ``sim`` (simulated lanes) and
    ``rec`` (labelled recordings, :func:`~detect.model.dataset.is_recorded`). Early stopping takes
    their mean, so a few hundred recorded windows weigh as much as thousands of simulated
    ones: the epoch kept is the one that holds on both, not the one that fits the simulator."""
    rec = is_recorded(lane)
    out = {}
    for name, mask in (("sim", ~rec), ("rec", rec)):
        if mask.any():
            out[name] = float(
                nn.functional.binary_cross_entropy_with_logits(
                    torch.from_numpy(z[mask]), torch.from_numpy(y[mask]).float()
                )
            )
    return out


def fit(
    cfg: NetConfig,
    train: WindowSet,
    val: WindowSet,
    s: TrainSettings,
    out_dir: Path | None = None,
    resume: Path | None = None,
) -> tuple[FusionNet, History]:
    """Train a network; returns the best (lowest :func:`validation_bce`) weights and the history.

    In a process group each rank trains on its shard; the returned network is the same
    on every rank. Rank 0 writes ``metrics.csv``, ``last.pt`` and ``best.pt`` in ``out_dir``.
    Training runs on ``s.device``; augmentation draws on the CPU from seeded generators, so a
    run's data order and augmentation do not depend on the device. The returned network is
    on the CPU (calibration, export and the shipped weights are CPU work).
    """
    rank, size = world()
    device = resolve_device(s.device)
    if out_dir is not None and rank == 0:
        out_dir.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(s.seed)
    net = FusionNet(cfg)
    g_scale, e_scale = fit_input_scales(train)
    net.gpr_scale.fill_(g_scale)
    net.emi_scale.copy_(torch.from_numpy(e_scale[: cfg.emi_channels]))
    net.to(device)
    opt = torch.optim.AdamW(net.parameters(), lr=s.lr, weight_decay=s.weight_decay)
    hist = History()
    start = 0
    best_state = {k: v.clone() for k, v in net.state_dict().items()}
    if resume is not None and not Path(resume).is_file():
        log.warning("train.resume: no checkpoint %s, this model starts from scratch", resume)
    if resume is not None and Path(resume).is_file():
        ck = torch.load(resume, weights_only=True, map_location=device)
        net.load_state_dict(ck["net"])
        opt.load_state_dict(ck["opt"])
        start = int(ck["epoch"]) + 1
        hist.best_epoch = int(ck["best_epoch"])
        hist.best_val = float(ck["best_val"])
        best_path = Path(resume).with_name("best.pt")
        if best_path.is_file():
            best_state = torch.load(best_path, weights_only=True, map_location=device)["net"]
        log.info("resumed from %s at epoch %d", resume, start)
    model: nn.Module = net
    if size > 1:
        ids = [device.index] if device.type == "cuda" else None
        model = nn.parallel.DistributedDataParallel(net, device_ids=ids)
    csv_path = out_dir / "metrics.csv" if out_dir is not None else None
    y_val = val.is_mine
    e_scale_t = torch.from_numpy(e_scale[: cfg.emi_channels])
    for epoch in range(start, s.epochs):
        t0 = time.monotonic()
        rng = np.random.default_rng(s.seed + epoch)
        order = rng.permutation(len(train))
        n_batches = len(order) // (s.batch_size * size)
        if n_batches == 0:
            n_batches = 1
        gen = torch.Generator().manual_seed(s.seed * 1000 + epoch * 10 + rank)
        torch.manual_seed(s.seed * 7919 + epoch * 31 + rank)  # dropout
        for group in opt.param_groups:
            group["lr"] = s.lr * 0.5 * (1 + math.cos(math.pi * epoch / max(1, s.epochs)))
        model.train()
        bar = _progress(s.progress and rank == 0, n_batches, f"epoch {epoch + 1}/{s.epochs}")
        total = 0.0
        for b in range(n_batches):
            lo = (b * size + rank) * s.batch_size
            idx = order[lo : lo + s.batch_size]
            if idx.size == 0:
                idx = order[: s.batch_size]
            gpr, emi, present = batch_tensors(train, idx, cfg)
            gpr, emi, present = augment(gpr, emi, present, s, gen, g_scale, e_scale_t)
            gpr, emi, present = gpr.to(device), emi.to(device), present.to(device)
            out = model(gpr, emi, present)
            loss, _ = loss_terms(
                out,
                torch.from_numpy(train.cls[idx]).to(device),
                torch.from_numpy(train.depth_m[idx]).to(device),
                s,
                present,
            )
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            total += float(loss.detach())
            if bar is not None:
                bar.advance(bar.task_ids[0])
        if bar is not None:
            bar.stop()
        train_loss = total / n_batches
        if size > 1:
            t = torch.tensor([train_loss], device=device)
            dist.all_reduce(t)
            train_loss = float(t) / size
        out_v = raw_outputs(net, val)
        parts = validation_bce(out_v["z"], y_val, val.lane)
        val_bce = float(np.mean(list(parts.values())))
        p = 1 / (1 + np.exp(-out_v["z"]))
        row = {
            "epoch": epoch,
            "train_loss": train_loss,
            "val_bce": val_bce,
            **{f"val_bce_{k}": v for k, v in parts.items() if len(parts) > 1},
            "val_auc": roc_auc(out_v["z"], y_val),
            **{
                f"val_auc_{k}": roc_auc(out_v["z"][m], y_val[m])
                for k, m in (("sim", ~is_recorded(val.lane)), ("rec", is_recorded(val.lane)))
                if len(parts) > 1
            },
            "val_ece_uncal": expected_calibration_error(p, y_val),
            "lr": opt.param_groups[0]["lr"],
            "seconds": time.monotonic() - t0,
        }
        hist.rows.append(row)
        improved = val_bce < hist.best_val - 1e-4
        if improved:
            hist.best_val = val_bce
            hist.best_epoch = epoch
            best_state = {k: v.clone() for k, v in net.state_dict().items()}
        if rank == 0:
            log.info(
                "epoch %d train %.4f val_bce %.4f val_auc %.4f (%.1fs)",
                epoch,
                train_loss,
                val_bce,
                row["val_auc"],
                row["seconds"],
            )
            if out_dir is not None and csv_path is not None:
                new = not csv_path.exists()
                with open(csv_path, "a", newline="") as f:
                    w = csv.DictWriter(f, fieldnames=list(row))
                    if new:
                        w.writeheader()
                    w.writerow(row)
                save_checkpoint(out_dir / "last.pt", net, opt, epoch, hist)
                if improved:
                    torch.save({"net": best_state}, out_dir / "best.pt")
                _tensorboard(out_dir, row)
        if epoch - hist.best_epoch >= s.patience:
            hist.stopped_early = True
            break
    net.load_state_dict(best_state)
    return net.cpu(), hist


def _tensorboard(out_dir: Path, row: Mapping[str, float]) -> None:
    try:
        from torch.utils.tensorboard import SummaryWriter  # optional (tensorboard extra)
    except ImportError:
        return
    with SummaryWriter(str(out_dir / "tb")) as w:
        for k, v in row.items():
            if k != "epoch":
                w.add_scalar(k, v, int(row["epoch"]))
