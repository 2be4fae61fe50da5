"""Train the shipped models (fused, gpr_only, emi_only) into models/, then score them.

    .venv/bin/python scripts/train_models.py [key=value ...]
    .venv/bin/python scripts/train_models.py --no-fullwave [key=value ...]

Runs ``detect train experiment=ship`` (the three variants; overrides pass through), then
``scripts/model_quality.py --write-cards`` so each card carries its held-out metrics.

The training mix: simulated lanes (half of them domain-randomised, ``train.domain_jitter``)
plus full-wave gprMax scenes, which ``scripts/fullwave_set.py`` builds first (cached; needs
``pip install -e .[fdtd]``; seeds far from the validation set's 500000 on). Two recipes
(``RECIPES``), one ``detect train`` run each:

* **gpr_only** (used for GPR alone): full-wave scenes of the training kind
  (``--training``, 3 mm cells: each its own radar, Ricker centre 1-2 GHz, antenna 2-10 cm up,
  2-8 cm apart, and its own random soil, never one of the validation set's named soils;
  clutter as often as threats, half of them beside each other). 100 scenes (seeds
  610000 on) train, each window used ``train.session_repeat`` (8) times an epoch; 20 (620000
  on) join the early-stopping set (``train.val_sessions``: the simulated and the full-wave
  losses count equally); 16 (630000 on) join the calibration set.
* **fused, emi_only**: 24 full-wave scenes of the validation set's radar (seeds 600000 on,
  3 mm cells) train, repeated 20 times; 8 (600100 on, 2 mm) calibrate; early stopping on
  the simulated lanes. (Trained with gpr_only's recipe the fused model found one mixed-lane
  mine fewer on the simulated benchmark: 31/32 at 0.1.)

``--no-fullwave`` trains on simulated lanes alone. About 30 min on 2 shared CPU cores once
the scenes are built (the 168 scenes: about 50 min more on 2 cores).
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from detect.app.train import train_task
from detect.config import ConfigError, compose

HERE = Path(__file__).resolve().parent

#: name -> fullwave_set.py arguments of each full-wave set (all cached under the fdtd cache)
FULLWAVE_SETS = {
    "train_c": ["--training", "--set", "dx_m=0.003", "--n", "100", "--seed", "610000"],
    "train_c_val": ["--training", "--set", "dx_m=0.003", "--n", "20", "--seed", "620000"],
    "train_c_cal": ["--training", "--set", "dx_m=0.003", "--n", "16", "--seed", "630000"],
    "train3mm": ["--n", "24", "--seed", "600000", "--set", "dx_m=0.003"],
    "train_b": ["--n", "8", "--seed", "600100"],
}
#: (variants, session_repeat, {train key: full-wave sets}), one `detect train` run each
RECIPES = (
    (
        ("gpr_only",),
        8,
        {"sessions": ["train_c"], "val_sessions": ["train_c_val"], "cal_sessions": ["train_c_cal"]},
    ),
    (("fused", "emi_only"), 20, {"sessions": ["train3mm"], "cal_sessions": ["train_b"]}),
)


def _described(folder: str) -> str:
    """A cache folder as a card names it: where it lies on any machine, and how to build it."""
    name = Path(folder).name
    if name in FULLWAVE_SETS:
        how = " ".join(["fullwave_set.py", *FULLWAVE_SETS[name]])
        return f"<fdtd cache>/{name} (scripts/train_models.py: {how})"
    return folder


def portable_cards(models_dir: Path) -> None:
    """Cards without this machine's paths: the full-wave folders by name and recipe, and
    no run, model or cache directory (the weights and their hashes are untouched)."""
    from detect.model.card import read_card, write_card

    keys = ("sessions", "cal_sessions", "val_sessions")
    for folder in sorted(p for p in models_dir.iterdir() if (p / "card.json").is_file()):
        card = read_card(folder)
        for part in (card.get("data") or {}, card.get("train_config") or {}):
            for key in keys:
                if part.get(key):
                    part[key] = [_described(str(x)) for x in part[key]]
        for key in ("models_dir", "out_dir", "cache_dir", "resume"):
            if key in (card.get("train_config") or {}):
                card["train_config"][key] = None
        write_card(folder, card)


def build_fullwave_sets() -> Path:
    """Build (or find in the cache) every full-wave set of the recipes; their root folder."""
    from detect.sim.fdtd.settings import fdtd_settings_from

    root = fdtd_settings_from({}).cache_path()
    for name, args in FULLWAVE_SETS.items():
        cmd = [sys.executable, str(HERE / "fullwave_set.py"), *args, "--out", str(root / name)]
        if subprocess.call(cmd) != 0:
            raise SystemExit(f"train_models: building {name} failed (or pass --no-fullwave)")
    return root


def recipe_overrides(root: Path | None, repeat: int, sets: dict[str, list[str]]) -> list[str]:
    """The train overrides of one recipe (none of its full-wave part without ``root``)."""
    if root is None:
        return []
    return [f"train.session_repeat={repeat}"] + [
        f"train.{key}=[{','.join(str(root / n) for n in names)}]" for key, names in sets.items()
    ]


def main() -> int:
    args = sys.argv[1:]
    if any(a in ("-h", "--help") for a in args):
        print(__doc__)
        return 0
    root = None if "--no-fullwave" in args else build_fullwave_sets()
    args = [a for a in args if a != "--no-fullwave"]
    models = HERE.parent / "models"
    overrides = ["experiment=ship", f"train.models_dir={models}", *args]
    only = [a for a in args if a.startswith("train.variants=")]
    for variants, repeat, sets in RECIPES:
        group = [] if only else [f"train.variants=[{','.join(variants)}]"]
        try:
            cfg = compose([*overrides, *recipe_overrides(root, repeat, sets), *group])
        except ConfigError as exc:
            print(f"train_models: {exc}", file=sys.stderr)
            return 2
        if only and not set(cfg.train.variants) & set(variants):
            continue
        if only:
            cfg.train.variants = [v for v in cfg.train.variants if v in variants]
        rc = train_task(cfg)
        if rc:
            return rc
    rc = subprocess.call(
        [sys.executable, str(HERE / "model_quality.py"), "--write-cards", *overrides]
    )
    if rc == 0:
        portable_cards(Path(str(cfg.train.models_dir)))
    return rc


if __name__ == "__main__":
    sys.exit(main())
