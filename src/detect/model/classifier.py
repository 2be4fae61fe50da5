"""Inference wrapper: load a shipped model with its card and score windows.

``Classifier.load("fused")`` reads ``models/fused/`` (or a directory path), checks the weights'
hash, loads tensors only (safetensors: a model file from elsewhere never runs code), and, when
given the running config, refuses weights trained with other preprocessing. ``predict`` takes
GPR and/or EMI windows (numpy, as cut by :mod:`detect.windows`) and returns numpy arrays.
A window whose GPR or EMI patch holds non-finite values is scored as if that sensor were
absent (e.g. a sensor in FAULT), and the corresponding branch score is NaN.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import torch
from safetensors.torch import load_file, save_file

from detect.model.card import (
    WEIGHTS,
    ModelCardError,
    check_preprocessing,
    preprocessing_from_cfg,
    read_card,
    write_card,
)
from detect.model.nets import CalibratedNet, EnsembleNet, FusionNet, NetConfig, ShippedNet
from detect.model.prediction import Prediction
from detect.windows import WindowSpec, gpr_present

log = logging.getLogger(__name__)


def resolve_model_dir(name_or_dir: str | Path) -> Path:
    p = Path(name_or_dir)
    if p.is_dir():
        return p
    from detect.config import models_dir

    candidate = models_dir() / str(name_or_dir)
    if candidate.is_dir():
        return candidate
    available = sorted(d.name for d in models_dir().glob("*") if (d / "card.json").is_file())
    raise ModelCardError(
        f"no model '{name_or_dir}' (not a directory, not in {models_dir()}); "
        f"available: {', '.join(available) or 'none'}"
    )


#: the most members a card may name (as ``train.members``)
MAX_MEMBERS = 64


def ensemble_size(card: Mapping[str, Any]) -> int | None:
    """Members of the card's ensemble; None for a single network (a card without 'ensemble')."""
    ens = card.get("ensemble")
    if ens is None:
        return None
    n = ens.get("members") if isinstance(ens, Mapping) else ens
    if not isinstance(n, int) or isinstance(n, bool) or not 1 <= n <= MAX_MEMBERS:
        raise ModelCardError(
            f"card 'ensemble.members' must be a whole number from 1 to {MAX_MEMBERS}, got {n!r}"
        )
    return n


def _networks(members: int | None) -> str:
    return "one network" if members is None else f"an ensemble of {members}"


def _members_in(state: Mapping[str, Any]) -> int | None:
    """Ensemble members the weights hold (``members.<i>.`` keys); None for a single network."""
    found = {k.split(".", 2)[1] for k in state if k.startswith("members.")}
    return len(found) if found else None


def build_net(card: Mapping[str, Any]) -> ShippedNet:
    net_cfg = NetConfig(**{"gpr_mask": False, **card["net"]})  # cards before the mask had none
    n = ensemble_size(card)
    if n is None:
        return CalibratedNet(FusionNet(net_cfg))
    return EnsembleNet([CalibratedNet(FusionNet(net_cfg)) for _ in range(n)])


def save_model(directory: Path, model: ShippedNet, card: Mapping[str, Any]) -> dict[str, Any]:
    """Write weights (safetensors) and the card; returns the card as written."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    state = {k: v.detach().contiguous().cpu() for k, v in model.state_dict().items()}
    save_file(state, str(directory / WEIGHTS))
    full = dict(card)
    full["net"] = model.cfg.to_dict()
    full["n_parameters"] = sum(p.numel() for p in model.parameters())
    if isinstance(model, EnsembleNet):
        full["ensemble"] = {**dict(full.get("ensemble") or {}), "members": len(model.members)}
    else:
        full.pop("ensemble", None)
    return write_card(directory, full)


def inference_device(name: str) -> str:
    """``model.device``: cpu, cuda, or auto (a CUDA GPU when PyTorch sees one).

    An operator's laptop without a GPU still scores: ``cuda`` there falls back to the CPU
    with a warning rather than leaving the pipeline without its model.
    """
    want = name.strip().lower()
    has_cuda = torch.cuda.is_available()
    if want == "auto":
        return "cuda" if has_cuda else "cpu"
    if want == "cuda" and not has_cuda:
        log.warning("model.device=cuda but PyTorch sees no CUDA GPU: scoring on the CPU")
        return "cpu"
    return want


class Classifier:
    """A loaded model: ``predict(gpr, emi)`` on batches of windows."""

    def __init__(
        self,
        model: ShippedNet,
        card: Mapping[str, Any],
        name: str = "",
        device: str | torch.device = "cpu",
    ) -> None:
        self.device = torch.device(device)
        self.model = model.eval().to(self.device)
        self.card = dict(card)
        self.name = name or str(card.get("name", ""))
        self.spec = WindowSpec.from_mapping(self.card["preprocessing"]["window"])
        net = model.cfg
        self.has_gpr = net.use_gpr
        self.has_emi = net.use_emi
        self.gpr_mask = net.gpr_mask

    @classmethod
    def load(cls, name_or_dir: str | Path, cfg: Any | None = None) -> Classifier:
        """Load ``models/<name>/`` or a directory; with ``cfg``, check its preprocessing."""
        directory = resolve_model_dir(name_or_dir)
        card = read_card(directory)
        name = str(card.get("name", directory.name))
        if cfg is not None:
            check_preprocessing(card, preprocessing_from_cfg(cfg), name)
        try:
            state = load_file(str(directory / str(card["weights"]["file"])))
        except Exception as exc:  # safetensors raises its own error types
            raise ModelCardError(f"{directory}: cannot read weights ({exc})") from exc
        want, have = ensemble_size(card), _members_in(state)
        if want != have:  # checked before building: a bad count must not build N networks
            raise ModelCardError(
                f"{directory}: weights do not fit the card's network (the card says "
                f"{_networks(want)}, the weights hold {_networks(have)})"
            )
        model = build_net(card)
        missing, unexpected = model.load_state_dict(state, strict=False)
        if missing or unexpected:
            raise ModelCardError(
                f"{directory}: weights do not fit the card's network "
                f"(missing {sorted(missing)[:3]}, unexpected {sorted(unexpected)[:3]})"
            )
        device = inference_device(str(cfg.model.get("device", "cpu"))) if cfg is not None else "cpu"
        return cls(model, card, name, device)

    def check_preprocessing(self, cfg: Any) -> None:
        check_preprocessing(self.card, preprocessing_from_cfg(cfg), self.name)

    def _inputs(
        self, gpr: np.ndarray | None, emi: np.ndarray | None
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        s = self.spec
        n = None
        for arr, what, m in ((gpr, "GPR", s.gpr_samples), (emi, "EMI", s.emi_channels)):
            if arr is None:
                continue
            if arr.ndim != 3 or arr.shape[1:] != (s.n_pos, m):
                raise ValueError(
                    f"{what} windows must have shape (n, {s.n_pos}, {m}) for model "
                    f"'{self.name}', got {arr.shape}"
                )
            if n is not None and arr.shape[0] != n:
                raise ValueError(f"GPR and EMI window counts differ ({n} vs {arr.shape[0]})")
            n = arr.shape[0]
        if n is None:
            raise ValueError("predict needs GPR windows, EMI windows or both")
        present = np.zeros((n, 2), dtype=np.float32)
        if gpr is not None and self.has_gpr:
            if self.gpr_mask:
                # NaN samples are the validity mask the network reads; a window is GPR
                # present with data on EDGE_CELLS positions each side of its centre (what
                # training's edge cuts keep), absent otherwise
                ok = gpr_present(gpr)
                gpr = np.where(ok[:, None, None], gpr, 0.0).astype(np.float32)
            else:
                ok = np.isfinite(gpr).all(axis=(1, 2))
                gpr = np.where(ok[:, None, None], gpr, 0.0).astype(np.float32)
            present[:, 0] = ok
        else:
            gpr = np.zeros((n, s.n_pos, s.gpr_samples), dtype=np.float32)
        if emi is not None and self.has_emi:
            ok = np.isfinite(emi).all(axis=(1, 2))
            present[:, 1] = ok
            emi = np.where(ok[:, None, None], emi, 0.0).astype(np.float32)
        else:
            emi = np.zeros((n, s.n_pos, s.emi_channels), dtype=np.float32)
        return gpr, emi, present

    def predict(
        self,
        gpr_patches: np.ndarray | None,
        emi_patches: np.ndarray | None,
        batch_size: int = 4096,
    ) -> Prediction:
        """Score windows. A model without a branch for the only sensor given raises ValueError."""
        gpr_in = None if gpr_patches is None else np.asarray(gpr_patches, dtype=np.float32)
        emi_in = None if emi_patches is None else np.asarray(emi_patches, dtype=np.float32)
        if (gpr_in is None or not self.has_gpr) and (emi_in is None or not self.has_emi):
            have = [w for w, a in (("GPR", gpr_in), ("EMI", emi_in)) if a is not None]
            need = [w for w, h in (("GPR", self.has_gpr), ("EMI", self.has_emi)) if h]
            raise ValueError(
                f"model '{self.name}' uses {'+'.join(need)} but only {'+'.join(have)} was given"
            )
        gpr, emi, present = self._inputs(gpr_in, emi_in)
        n = present.shape[0]
        outs: list[list[np.ndarray]] = [[], [], [], [], []]
        with torch.inference_mode():
            for i in range(0, max(n, 1), batch_size):
                res = self.model(
                    torch.from_numpy(gpr[i : i + batch_size]).to(self.device),
                    torch.from_numpy(emi[i : i + batch_size]).to(self.device),
                    torch.from_numpy(present[i : i + batch_size]).to(self.device),
                )
                for acc, r in zip(outs, res, strict=True):
                    acc.append(r.cpu().numpy())
        p_mine, probs, depth, p_gpr, p_emi = (np.concatenate(o) for o in outs)
        used = present.astype(bool)
        none = np.logical_not(used.any(axis=1))
        p_mine = np.where(none, np.nan, p_mine)
        return Prediction(
            p_mine=p_mine.astype(np.float32),
            class_probs=np.where(none[:, None], np.nan, probs).astype(np.float32),
            depth_m=np.where(none, np.nan, depth).astype(np.float32),
            branch_scores={
                "gpr": np.where(used[:, 0], p_gpr, np.nan).astype(np.float32),
                "emi": np.where(used[:, 1], p_emi, np.nan).astype(np.float32),
            },
            present=used,
        )
