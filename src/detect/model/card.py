"""Model cards: what a set of weights needs (preprocessing, calibration) and what it achieved.

``models/<name>/`` holds ``weights.safetensors`` (tensors only), ``card.json`` (machine-read:
network config, preprocessing, calibration, metrics, hash), ``card.md`` (for people) and
``SHA256SUMS``. The preprocessing block is compared with the running config before a model
runs: weights never meet a pipeline they were not trained for.
"""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Mapping
from pathlib import Path
from typing import Any

CARD_JSON = "card.json"
CARD_MD = "card.md"
WEIGHTS = "weights.safetensors"
SUMS = "SHA256SUMS"
CARD_VERSION = 1


class ModelCardError(ValueError):
    """A model directory is missing a file, has a bad hash or a malformed card."""


class PreprocessingMismatch(ModelCardError):
    """The card's preprocessing differs from the running config."""


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def _plain(node: Any) -> Any:
    """Config nodes, tuples and numpy scalars as plain JSON values."""
    try:
        from omegaconf import DictConfig, ListConfig, OmegaConf

        if isinstance(node, DictConfig | ListConfig):
            node = OmegaConf.to_container(node, resolve=True)
    except ImportError:  # pragma: no cover
        pass
    if isinstance(node, Mapping):
        return {str(k): _plain(v) for k, v in node.items()}
    if isinstance(node, list | tuple):
        return [_plain(v) for v in node]
    if hasattr(node, "item") and callable(node.item):
        return node.item()
    return node


def preprocessing_from_cfg(cfg: Any) -> dict[str, Any]:
    """The part of the running config that the weights depend on: DSP chains and window."""
    from detect.windows import window_spec_from_cfg

    dsp = cfg.get("dsp") if hasattr(cfg, "get") else None
    dsp_plain = _plain(dsp) if dsp is not None else {}
    return {
        "dsp": {"gpr": dsp_plain.get("gpr", []), "emi": dsp_plain.get("emi", [])},
        "window": window_spec_from_cfg(cfg).to_dict(),
    }


def first_difference(
    a: Any, b: Any, path: str, left: str = "card", right: str = "config"
) -> str | None:
    """The first key path where two nested settings differ (numbers within rounding), named
    with both values; None where they agree."""
    if isinstance(a, Mapping) and isinstance(b, Mapping):
        for k in sorted(set(a) | set(b)):
            if k not in a:
                return f"{path}.{k} (absent in {left})"
            if k not in b:
                return f"{path}.{k} (absent in {right})"
            d = first_difference(a[k], b[k], f"{path}.{k}", left, right)
            if d:
                return d
        return None
    if isinstance(a, list) and isinstance(b, list):
        if len(a) != len(b):
            return f"{path} ({len(a)} entries in {left}, {len(b)} in {right})"
        for i, (x, y) in enumerate(zip(a, b, strict=True)):
            d = first_difference(x, y, f"{path}[{i}]", left, right)
            if d:
                return d
        return None
    if isinstance(a, int | float) and isinstance(b, int | float) and not isinstance(a, bool):
        if math.isclose(float(a), float(b), rel_tol=1e-9, abs_tol=1e-12):
            return None
        return f"{path} ({left} {a!r}, {right} {b!r})"
    return None if a == b else f"{path} ({left} {a!r}, {right} {b!r})"


def check_preprocessing(card: Mapping[str, Any], running: Mapping[str, Any], name: str) -> None:
    """Raise :class:`PreprocessingMismatch` naming the first key where they differ.

    The halo and guard (labelling choices, not preprocessing) are not compared.
    """
    want = _plain(card.get("preprocessing", {}))
    have = _plain(running)
    for d in (want, have):
        d.get("window", {}).pop("halo_m", None)
        d.get("window", {}).pop("guard_m", None)
    diff = first_difference(want, have, "preprocessing")
    if diff:
        raise PreprocessingMismatch(
            f"model '{name}' was trained with different preprocessing: {diff}; "
            "use the config it was trained with or retrain"
        )


def write_card(directory: Path, card: Mapping[str, Any]) -> dict[str, Any]:
    """Write card.json, card.md and SHA256SUMS next to an existing weights file."""
    directory = Path(directory)
    weights = directory / WEIGHTS
    if not weights.is_file():
        raise ModelCardError(f"{weights} does not exist")
    out = _plain(dict(card))
    out["card_version"] = CARD_VERSION
    out["weights"] = {
        "file": WEIGHTS,
        "sha256": sha256_file(weights),
        "bytes": weights.stat().st_size,
    }
    (directory / CARD_JSON).write_text(json.dumps(out, indent=2, sort_keys=False) + "\n")
    (directory / CARD_MD).write_text(render_markdown(out))
    (directory / SUMS).write_text(f"{out['weights']['sha256']}  {WEIGHTS}\n")
    return out


def read_card(directory: Path) -> dict[str, Any]:
    """Read and check a model directory: card present and well-formed, weights hash matches."""
    directory = Path(directory)
    path = directory / CARD_JSON
    if not path.is_file():
        raise ModelCardError(f"model directory {directory} has no {CARD_JSON}")
    try:
        card = json.loads(path.read_text())
    except json.JSONDecodeError as exc:
        raise ModelCardError(f"{path}: not valid JSON ({exc.msg} at line {exc.lineno})") from exc
    for key in ("net", "preprocessing", "weights"):
        if key not in card:
            raise ModelCardError(f"{path}: missing '{key}'")
    weights = directory / str(card["weights"].get("file", WEIGHTS))
    if not weights.is_file():
        raise ModelCardError(f"model directory {directory} has no weights file {weights.name}")
    digest = sha256_file(weights)
    if digest != card["weights"].get("sha256"):
        raise ModelCardError(
            f"{weights}: sha256 {digest[:12]}... does not match the card "
            f"({str(card['weights'].get('sha256'))[:12]}...); refusing to load"
        )
    return dict(card)


def _fmt(v: Any) -> str:
    if isinstance(v, float):
        return f"{v:.4f}"
    return str(v)


def render_markdown(card: Mapping[str, Any]) -> str:
    lines = [f"# Model card: {card.get('name', '?')}", ""]
    if card.get("summary"):
        lines += [str(card["summary"]), ""]
    if card.get("reproduce"):
        lines += [f"Reproduce: {card['reproduce']}", ""]
    lines += ["## Weights", ""]
    w = card.get("weights", {})
    lines += [
        f"- file: `{w.get('file')}` ({w.get('bytes', 0) / 1e6:.2f} MB), tensors only (safetensors)",
        f"- sha256: `{w.get('sha256')}`",
        f"- parameters: {card.get('n_parameters', '?')}",
        "",
        "## Network",
        "",
        "```json",
        json.dumps(card.get("net", {}), indent=2),
        "```",
        "",
        "## Preprocessing (checked against the running config before the model runs)",
        "",
        "```json",
        json.dumps(card.get("preprocessing", {}), indent=2),
        "```",
        "",
    ]
    env = card.get("envelope")
    lines += ["## Radar envelope (radars this model scores; outside: not applied)", ""]
    if env:
        lines += [
            f"- measured spectrum peak: {env['centre_hz'][0] / 1e9:.2f}-"
            f"{env['centre_hz'][1] / 1e9:.2f} GHz (trained on nominal "
            f"{env['sim_centre_hz'][0] / 1e9:.2f}-{env['sim_centre_hz'][1] / 1e9:.2f} GHz "
            "Ricker sources)",
            f"- record after time zero: at least {env['min_record_ns']:g} ns (trained "
            f"{env['window_ns'][0]:g}-{env['window_ns'][1]:g} ns windows; longer records "
            "are cropped to the model's time axis)",
            f"- sampling: at least {env['samples_per_period'][0]:g} samples per period",
            f"- trace spacing: at most {env['trace_spacing_m'][1] * 100:g} cm "
            f"(+{env['spacing_tolerance']:.0%})",
            "- outside it the model is not applied: `scan` says so in alarms.json "
            "(`model.applied: false`, with the reason), a live radar is FAULT",
        ]
    else:
        lines += ["- the one simulated radar of the training data only"]
    lines += ["", "## Training data", ""]
    for k, v in card.get("data", {}).items():
        lines.append(f"- {k}: {_fmt(v)}")
    ens = card.get("ensemble")
    if isinstance(ens, Mapping) and ens:
        lines += ["", "## Ensemble", ""]
        lines += [f"- {ens.get('members')} members; outputs: {ens.get('combine', '?')}", ""]
        lines += ["| member | train seed | best epoch | weights sha256 |", "|---|---|---|---|"]
        for i, m in enumerate(ens.get("member_cards") or []):
            best = (m.get("training") or {}).get("best_epoch", "?")
            sha = str(m.get("weights_sha256") or "?")[:12]
            lines.append(f"| {i} | {m.get('train_seed', '?')} | {best} | `{sha}` |")
    lines += ["", "## Calibration", ""]
    for k, v in card.get("calibration", {}).items():
        if k == "members" and ens:
            v = "per member, see card.json (ensemble.member_cards)"
        lines.append(f"- {k}: {v}")
    export = card.get("export_check", {})
    if export:
        lines += ["", "## Export (TorchScript, ONNX): largest output difference vs PyTorch", ""]
        lines += [f"- {k}: {v:.2e}" for k, v in export.items()]
    test_set = card.get("test_set", {})
    if test_set:
        lines += ["", "## Test set", ""]
        lines += [f"- {k}: {v}" for k, v in test_set.items()]
    metrics = card.get("metrics", {})
    if metrics:
        lines += [
            "",
            "## Metrics (held-out simulated test set; 95% lane-bootstrap intervals)",
            "",
        ]
        lines += ["| detector | metric | value | 95% CI |", "|---|---|---|---|"]
        for det, ms in metrics.items():
            if not isinstance(ms, Mapping):
                lines.append(f"| {det} | | {_fmt(ms)} | |")
                continue
            for m, v in ms.items():
                if isinstance(v, list | tuple) and len(v) == 3:
                    lines.append(f"| {det} | {m} | {v[0]:.4f} | [{v[1]:.4f}, {v[2]:.4f}] |")
                else:
                    lines.append(f"| {det} | {m} | {_fmt(v)} | |")
    limits = card.get("known_limits", [])
    if limits:
        lines += ["", "## Known limits", ""]
        lines += [f"- {x}" for x in limits]
    lines.append("")
    return "\n".join(lines)
