"""``scan.png``: processed B-scan, EMI gates, score profile and alarms on one along-track axis."""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from detect.blocks import GprBlock, MdBlock


def plot_scan(
    path: str | os.PathLike[str],
    blocks: Sequence[GprBlock | MdBlock],
    result: Mapping[str, Any],
) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    gpr = [b for b in blocks if isinstance(b, GprBlock)]
    emi = [b for b in blocks if isinstance(b, MdBlock)]
    rows = 1 + bool(gpr) + bool(emi)
    fig, axes = plt.subplots(
        rows,
        1,
        sharex=True,
        figsize=(11, 2.6 * rows + 1),
        squeeze=False,
        gridspec_kw={"height_ratios": [3] * bool(gpr) + [1.5] * bool(emi) + [1.5]},
    )
    ax_list = list(axes[:, 0])
    alarms = result.get("alarms", [])
    if gpr:
        ax = ax_list.pop(0)
        data = np.concatenate([b.data for b in gpr])
        pos = np.concatenate([b.position_m for b in gpr])
        t_ns = gpr[0].time_ns
        clip = float(np.nanpercentile(np.abs(data), 99)) or 1.0
        x0, x1 = (np.nanmin(pos), np.nanmax(pos)) if np.isfinite(pos).any() else (0, len(pos))
        ax.imshow(
            data.T,
            aspect="auto",
            cmap="gray",
            vmin=-clip,
            vmax=clip,
            extent=(x0, x1, float(t_ns[-1]), float(t_ns[0])),
        )
        ax.set_ylabel("time (ns)")
        ax.set_title("processed GPR B-scan")
    if emi:
        ax = ax_list.pop(0)
        data = np.concatenate([b.data for b in emi])
        pos = np.concatenate([b.position_m for b in emi])
        step = max(1, len(pos) // 5000)
        ax.plot(pos[::step], data[::step], lw=0.6)
        ax.set_ylabel("EMI (norm. V)")
    ax = ax_list.pop(0)
    track = result.get("track", {})
    ax.plot(track.get("position_m", []), track.get("p_mine", []), "k-", lw=0.8, label="P(mine)")
    for seg in result.get("coverage", []):
        if seg.get("status") == "not_covered":
            ax.axvspan(seg["start_m"], seg["end_m"], color="red", alpha=0.25)
    for a in alarms:
        ax.axvline(a["position_m"], color="m", lw=1)
        ax.annotate(f"{a['confidence']:.2f}", (a["position_m"], 1.0), fontsize=7, color="m")
    ax.set_ylim(0, 1.05)
    ax.set_ylabel("P(mine)")
    ax.set_xlabel("along-track position (m)")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
