"""Draw the simulator figures of docs/simulator.md (docs/img/sim_*.png).

.venv/bin/python scripts/sim_figures.py [--out docs/img]
"""

from __future__ import annotations

import argparse
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt

from detect.sim.lane import simulate_lane
from detect.sim.scene import canonical_scene, place
from detect.sim.settings import SimSettings
from detect.sinks.plot import Radargram, draw_bscan, draw_emi_gates, draw_truth, radargram_figures

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


def _mean_removed(lane):
    """The lane's GPR with the mean trace removed (display only: shows the hyperbolas)."""
    return lane.gpr.with_data(lane.gpr.data - lane.gpr.data.mean(axis=0))


def _bscan(ax, lane, clip: float, truth=(), velocity_m_ns: float | None = None) -> None:
    """The lane's B-scan through the one plotting module (detect.sinks.plot)."""
    pos = lane.gpr.position_m
    draw_bscan(ax, _mean_removed(lane), float(pos[0]), float(pos[-1]), clip, cmap="seismic",
               colorbar=False)  # fmt: skip
    if truth and velocity_m_ns:
        draw_truth(ax, truth, float(pos[0]), float(pos[-1]),
                   lambda d: 2.0 * d / velocity_m_ns, labels=False)  # fmt: skip
    ax.set_ylim(12, 0)


def class_figure(out: Path, soil: str = "moist_sand") -> None:
    s = SimSettings()
    fig, axs = plt.subplots(2, len(PANELS), figsize=(20, 6), sharey="row")
    for j, (cls, key, title, depth) in enumerate(PANELS):
        targets = [place(key, 1.0, depth)] if key else []
        scene = canonical_scene(targets, soil, length_m=2.0, scatterers=True, flat=False, seed=j)
        lane = simulate_lane(3, s, lane_index=j, scene=scene)
        _bscan(axs[0, j], lane, 0.08)
        if key:
            axs[0, j].axvline(1.0, color="k", lw=0.5, ls=":")
        axs[0, j].set_title(f"{cls}\n{title}, {depth * 100:.0f} cm", fontsize=8)
        pos = lane.emi.position_m + s.head.emi_offset_m
        draw_emi_gates(axs[1, j], lane.emi, float(pos[0]), float(pos[-1]), gates=(0, 3, 6),
                       x_offset_m=s.head.emi_offset_m, legend=j == 0)  # fmt: skip
        axs[1, j].set_ylabel("")
        axs[1, j].set_xlabel("coil position (m)", fontsize=7)
        for ax in axs[:, j]:
            ax.tick_params(labelsize=6)
    axs[0, 0].set_ylabel("two-way time (ns)")
    axs[1, 0].set_ylabel("EMI (normalised V)")
    fig.suptitle(
        f"Simulated GPR B-scans (mean trace removed) and EMI decay gates over each class, {soil}",
        fontsize=10,
    )
    fig.tight_layout()
    _save(fig, out / "sim_classes.png", 60)
    plt.close(fig)


def lane_figure(out: Path, seed: int = 0) -> None:
    """One lane as a radargram page (detect.sinks.plot), the head's wobble below it."""
    s = SimSettings()
    lane = simulate_lane(seed, s, lane_index=1)
    emi = lane.emi.with_positions(lane.emi.position_m + s.head.emi_offset_m)
    soil = lane.scene.soil
    h_m = (s.head.height_min_m + s.head.height_max_m) / 2
    rg = Radargram(
        gpr=_mean_removed(lane),
        emi=emi,
        source=f"simulated lane (seed {seed}, lane 1)",
        instrument=f"{lane.gpr.header.antenna_hz / 1e6:.0f} MHz GPR + PI metal detector, "
        f"{soil.name}",
        steps=["GPR: mean trace removed (display only); EMI: as simulated, against coil position"],
        velocity_m_ns=soil.velocity_m_ns,
        velocity_note=f"soil {soil.name}",
        surface_ns=2 * h_m / 0.299792458,
        truth=lane.truth,
        emi_gates=(0, 4),
    )

    def wobble(ax, a: float, b: float) -> None:
        ax.plot(lane.trajectory.x_m, lane.trajectory.height_m * 100, lw=0.8, label="height (cm)")
        ax.plot(lane.trajectory.x_m, lane.trajectory.y_m * 100, lw=0.8, label="lateral (cm)")
        ax.set_xlim(a, b)
        ax.set_ylabel("head (cm)", fontsize=8)
        ax.legend(fontsize=7, loc="upper right")

    (fig,) = radargram_figures(rg, extra_rows=[(0.9, wobble)])
    _save(fig, out / "sim_lane.png", 60)


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
