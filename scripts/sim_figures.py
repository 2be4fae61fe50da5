"""Draw the simulator figures of docs/simulator.md (docs/img/sim_*.png).

.venv/bin/python scripts/sim_figures.py [--out docs/img]
"""

from __future__ import annotations

import argparse
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np

from detect.sim.lane import simulate_lane
from detect.sim.scene import canonical_scene, place
from detect.sim.settings import SimSettings

PANELS = [
    ("ap_mine", "pmn2", "PMN-2 (3 g metal)", 0.05),
    ("ap_mine", "pma2", "PMA-2 (0.4 g)", 0.05),
    ("at_mine", "tm62m", "TM-62M (metal)", 0.15),
    ("at_mine", "tm62p", "TM-62P (plastic)", 0.15),
    ("uxo", "grenade40", "40 mm grenade", 0.10),
    ("metal_clutter", "shrapnel", "shrapnel 8 g", 0.05),
    ("metal_clutter", "bottle_cap", "bottle cap", 0.03),
    ("nonmetal_clutter", "rock", "rock", 0.10),
    ("nonmetal_clutter", "void", "void", 0.10),
    ("background", "", "no object", 0.0),
]


def _save(fig, path: Path, dpi: int) -> None:
    """PNG with a 64-colour palette: the figures stay small in the repository."""
    from io import BytesIO

    from PIL import Image

    buf = BytesIO()
    fig.savefig(buf, dpi=dpi, format="png")
    buf.seek(0)
    Image.open(buf).convert("RGB").quantize(64).save(path, optimize=True)


def _bscan(ax, lane, x_obj: float | None, clip: float) -> None:
    d = lane.gpr.data - lane.gpr.data.mean(axis=0)
    pos = lane.gpr.position_m
    # Traces are time-triggered and the walking speed varies: show them on a regular x grid.
    grid = np.linspace(pos[0], pos[-1], pos.size)
    d = d[np.clip(np.searchsorted(pos, grid), 0, pos.size - 1)]
    ext = (pos[0], pos[-1], lane.gpr.n_samples * lane.gpr.header.dt_ns, 0)
    ax.imshow(d.T, aspect="auto", cmap="seismic", vmin=-clip, vmax=clip, extent=ext)
    if x_obj is not None:
        ax.axvline(x_obj, color="k", lw=0.5, ls=":")
    ax.set_ylim(12, 0)


def class_figure(out: Path, soil: str = "moist_sand") -> None:
    s = SimSettings()
    fig, axs = plt.subplots(2, len(PANELS), figsize=(20, 6), sharey="row")
    for j, (cls, key, title, depth) in enumerate(PANELS):
        targets = [place(key, 1.0, depth)] if key else []
        scene = canonical_scene(targets, soil, length_m=2.0, scatterers=True, flat=False, seed=j)
        lane = simulate_lane(3, s, lane_index=j, scene=scene)
        _bscan(axs[0, j], lane, 1.0 if key else None, 0.08)
        axs[0, j].set_title(f"{cls}\n{title}, {depth * 100:.0f} cm", fontsize=8)
        x_emi = lane.emi.position_m + s.head.emi_offset_m
        for g, c in ((0, "C0"), (3, "C1"), (6, "C2")):
            axs[1, j].plot(
                x_emi, lane.emi.data[:, g], c, lw=0.6, label=f"{s.gate_times_s[g] * 1e6:.0f} us"
            )
        axs[1, j].set_yscale("symlog", linthresh=0.02)
        axs[1, j].set_xlabel("coil position (m)", fontsize=7)
        for ax in axs[:, j]:
            ax.tick_params(labelsize=6)
    axs[0, 0].set_ylabel("two-way time (ns)")
    axs[1, 0].set_ylabel("EMI (normalised V)")
    axs[1, 0].legend(fontsize=6)
    fig.suptitle(
        f"Simulated GPR B-scans (mean trace removed) and EMI decay gates over each class, {soil}",
        fontsize=10,
    )
    fig.tight_layout()
    _save(fig, out / "sim_classes.png", 60)
    plt.close(fig)


def lane_figure(out: Path, seed: int = 0) -> None:
    s = SimSettings()
    lane = simulate_lane(seed, s, lane_index=1)
    fig, axs = plt.subplots(3, 1, figsize=(14, 7), sharex=True)
    _bscan(axs[0], lane, None, 0.08)
    axs[0].set_ylabel("ns")
    x_emi = lane.emi.position_m + s.head.emi_offset_m
    axs[1].plot(x_emi, lane.emi.data[:, 0], lw=0.5, label="gate 10 us")
    axs[1].plot(x_emi, lane.emi.data[:, 4], lw=0.5, label=f"gate {s.gate_times_s[4] * 1e6:.0f} us")
    axs[1].set_yscale("symlog", linthresh=0.02)
    axs[1].legend(fontsize=7)
    axs[1].set_ylabel("EMI")
    axs[2].plot(lane.trajectory.x_m, lane.trajectory.height_m * 100, lw=0.8, label="height (cm)")
    axs[2].plot(lane.trajectory.x_m, lane.trajectory.y_m * 100, lw=0.8, label="lateral (cm)")
    axs[2].legend(fontsize=7)
    axs[2].set_xlabel("along-track position (m)")
    for t in lane.truth:
        for ax in axs[:2]:
            ax.axvline(t["x_m"], color="k", lw=0.5, ls=":")
        axs[0].text(t["x_m"], 1.0, f"{t['kind']}\n{t['depth_m'] * 100:.0f} cm", fontsize=6)
    fig.suptitle(f"One simulated lane ({lane.scene.soil.name}), seed {seed} lane 1", fontsize=10)
    fig.tight_layout()
    _save(fig, out / "sim_lane.png", 60)
    plt.close(fig)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--out", default="docs/img")
    args = ap.parse_args()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    class_figure(out)
    lane_figure(out)
    for p in sorted(out.glob("sim_*.png")):
        print(f"{p}  {p.stat().st_size / 1024:.0f} kB")


if __name__ == "__main__":
    main()
