"""Combine separately trained models of one kind into one shipped ensemble.

``train.members`` (``detect train``) trains a variant several times, member ``i`` as a run
with ``train.seed + i`` would (its own initialisation, batch order, augmentation and
simulated lanes), and writes the mean of their calibrated outputs as one model
(:class:`~detect.model.nets.EnsembleNet`). :func:`combine` does the same from model folders
trained before.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from detect.model.card import ModelCardError, first_difference
from detect.model.nets import CalibratedNet, EnsembleNet

COMBINE = (
    "mean of the members' calibrated outputs (P(mine), class probabilities, depth, branch scores)"
)


def member_summary(card: Mapping[str, Any]) -> dict[str, Any]:
    """What the ensemble's card keeps of one member's card."""
    data = card.get("data") or {}
    weights = card.get("weights") or {}
    return {
        "train_seed": data.get("train_seed"),
        "weights_sha256": weights.get("sha256"),
        "training": card.get("training"),
        "calibration": card.get("calibration"),
    }


def ensemble_card(cards: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """The first member's card (data, preprocessing, envelope), with the members listed.

    Members must agree on what the card promises a user: preprocessing, window, envelope,
    network and classes; a difference is refused, naming the first field that differs.
    """
    if not cards:
        raise ModelCardError("an ensemble needs at least one member")
    first = cards[0]
    for i, card in enumerate(cards[1:], start=1):
        for key in ("preprocessing", "envelope", "net", "classes", "offsets_m"):
            diff = first_difference(first.get(key), card.get(key), key, "member 0", f"member {i}")
            if diff is not None:
                raise ModelCardError(f"ensemble members differ: {diff}")
    card = {k: v for k, v in first.items() if k not in ("weights", "metrics", "test_set")}
    members = [member_summary(c) for c in cards]
    card["training"] = {"members": [m["training"] for m in members]}
    card["calibration"] = {"method": COMBINE, "members": [m["calibration"] for m in members]}
    card["ensemble"] = {"members": len(cards), "combine": COMBINE, "member_cards": members}
    data = dict(card.get("data") or {})
    data["train_seed"] = [m["train_seed"] for m in members]
    card["data"] = data
    return card


def load_ensemble(member_dirs: Sequence[Path]) -> tuple[EnsembleNet, dict[str, Any]]:
    """The ensemble of the models in ``member_dirs`` and its card, not yet written.

    Each member is loaded as ``detect`` loads a model (weights checked against its card).
    """
    from detect.model.classifier import Classifier

    loaded = [Classifier.load(Path(d)) for d in member_dirs]
    nets: list[CalibratedNet] = []
    for d, clf in zip(member_dirs, loaded, strict=True):
        if not isinstance(clf.model, CalibratedNet):
            raise ModelCardError(f"{d}: already an ensemble; combine single models")
        nets.append(clf.model.cpu())
    return EnsembleNet(nets), ensemble_card([clf.card for clf in loaded])


def combine(member_dirs: Sequence[Path], out_dir: Path, name: str | None = None) -> dict[str, Any]:
    """Write the ensemble of the models in ``member_dirs`` to ``out_dir``; the card as written."""
    from detect.model.classifier import save_model

    model, card = load_ensemble(member_dirs)
    if name:
        card["name"] = name
    return save_model(Path(out_dir), model, card)
