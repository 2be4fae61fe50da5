"""Plots and the Markdown report of ``detect evaluate`` (from the metrics document)."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from detect.metrics import group_order


def _plt() -> Any:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def write_plots(
    out_dir: Path, doc: Mapping[str, Any], example_lane: Any, examples: Mapping[str, Any]
) -> list[str]:
    """FROC, ROC, reliability, Pd by depth and by kind, example lane; returns file names."""
    plt = _plt()
    dets: Mapping[str, Any] = doc["detectors"]
    written: list[str] = []

    fig, ax = plt.subplots(figsize=(7, 5))
    for name, r in dets.items():
        f = r["froc"]
        far = np.asarray(f["far_m2"], dtype=float)
        pd = np.asarray(f["pd"], dtype=float)
        # threshold order, not sorted: at low thresholds regions merge and Pd can fall again
        (line,) = ax.plot(far, pd, "-", marker=".", ms=3, lw=1, label=name)
        op = r["at_operating_point"]
        if op.get("far_m2") is not None and op["pd"]["n"]:
            ax.plot(op["far_m2"], op["pd"]["p"], "o", color=line.get_color())
    ax.set_xscale("symlog", linthresh=0.05)
    ax.set_xlabel("false alarms per m²")
    ax.set_ylabel("probability of detection")
    ax.set_ylim(-0.02, 1.02)
    ax.grid(alpha=0.3)
    ax.set_title("FROC (dots: operating point from the calibration lanes)")
    ax.legend(loc="lower right")
    fig.tight_layout()
    fig.savefig(out_dir / "froc.png", dpi=110)
    plt.close(fig)
    written.append("froc.png")

    fig, axes = plt.subplots(1, 2, figsize=(11, 4.5))
    for name, r in dets.items():
        w = r["windows"]
        if not w.get("n"):
            continue
        axes[0].plot(w["roc"]["fpr"], w["roc"]["tpr"], label=f"{name} AUC {w['auc']:.3f}")
        rel = w["reliability"]
        mp = np.asarray(rel["mean_p"], dtype=float)
        fp = np.asarray(rel["frac_pos"], dtype=float)
        ok = np.isfinite(mp) & np.isfinite(fp)
        axes[1].plot(mp[ok], fp[ok], "o-", label=f"{name} ECE {w['ece']:.3f}")
    axes[0].plot([0, 1], [0, 1], "k:", lw=0.8)
    axes[0].set_xlabel("false-positive rate (windows)")
    axes[0].set_ylabel("true-positive rate (windows)")
    axes[0].set_title("ROC over track windows")
    axes[0].legend(loc="lower right", fontsize=8)
    axes[1].plot([0, 1], [0, 1], "k:", lw=0.8)
    axes[1].set_xlabel("predicted P(mine)")
    axes[1].set_ylabel("observed fraction of mine windows")
    axes[1].set_title("reliability diagram")
    axes[1].legend(loc="upper left", fontsize=8)
    fig.tight_layout()
    fig.savefig(out_dir / "roc_reliability.png", dpi=110)
    plt.close(fig)
    written.append("roc_reliability.png")

    for key, fname, title in (
        ("pd_by_depth", "pd_by_depth.png", "Pd by depth (to top)"),
        ("pd_by_kind", "pd_by_kind.png", "Pd by mine kind"),
    ):
        if _bar_plot(plt, out_dir / fname, dets, key, title):
            written.append(fname)

    if example_lane is not None and examples:
        written += _example_lane_plot(out_dir, dets, example_lane, examples)
    return written


def _bar_plot(plt: Any, path: Path, dets: Mapping[str, Any], key: str, title: str) -> bool:
    groups = sorted(
        {g for r in dets.values() for g in r["at_operating_point"][key]}, key=group_order
    )
    if not groups or not dets:
        return False
    fig, ax = plt.subplots(figsize=(max(6, 1.2 * len(groups) * max(1, len(dets)) / 2), 4.5))
    width = 0.8 / len(dets)
    x = np.arange(len(groups))
    for i, (name, r) in enumerate(dets.items()):
        tab = r["at_operating_point"][key]
        p = np.array(
            [tab[g]["p"] if g in tab and tab[g]["p"] is not None else np.nan for g in groups],
            dtype=float,
        )
        lo = np.array([tab[g]["ci"][0] if g in tab else np.nan for g in groups], dtype=float)
        hi = np.array([tab[g]["ci"][1] if g in tab else np.nan for g in groups], dtype=float)
        err = np.vstack([np.nan_to_num(p - lo), np.nan_to_num(hi - p)])
        ax.bar(
            x + (i - (len(dets) - 1) / 2) * width,
            np.nan_to_num(p),
            width,
            yerr=err,
            capsize=2,
            label=name,
        )
    ns = [
        max((r["at_operating_point"][key].get(g, {}).get("n", 0) for r in dets.values()), default=0)
        for g in groups
    ]
    ax.set_xticks(x, [f"{g}\n(n={n})" for g, n in zip(groups, ns, strict=True)], fontsize=8)
    ax.set_ylim(0, 1.05)
    ax.set_ylabel("Pd at the operating point (95% CI)")
    ax.set_title(title)
    ax.legend(fontsize=7, loc="lower left")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return True


def _f(v: Any, nd: int = 3) -> str:
    if v is None:
        return "n/a"
    if isinstance(v, float) and not math.isfinite(v):
        return "n/a"
    return f"{v:.{nd}f}" if isinstance(v, float) else str(v)


def _pd_cell(pd: Mapping[str, Any]) -> str:
    if not pd.get("n"):
        return "n/a"
    return f"{pd['k']}/{pd['n']} = {pd['p']:.3f} [{pd['ci'][0]:.3f}, {pd['ci'][1]:.3f}]"


def write_report(path: Path, doc: Mapping[str, Any], plots: Sequence[str]) -> None:
    dets: Mapping[str, Any] = doc["detectors"]
    lanes = doc["lanes"]
    sc = doc["scoring"]
    t = lanes["test"]
    c = lanes["calibration"]
    lines = [
        "# Detector evaluation",
        "",
        f"Created {doc['created_utc']}. Lanes: {lanes['source']}.",
        "",
        f"- Test lanes: {t['n_lanes']} ({t['length_m']:.1f} m, {t['area_m2']:.1f} m²), "
        f"targets {t['targets_by_class']}, soils {t['soils']}.",
        f"- Calibration lanes (operating point, baseline Platt fit): {c['n_lanes']} "
        f"({c['length_m']:.1f} m), targets {c['targets_by_class']}.",
        f"- Scoring: halo {sc['halo_m']} m from the target {sc['halo_from']}"
        f"{' (2-D)' if sc['cross_track'] else ' (along track)'}; one alarm detects at most one "
        "target; extra alarms on a detected target are not false alarms; alarms on clutter are "
        f"false alarms; mines in ground reported not covered count as missed. Pd intervals: "
        f"{sc['pd_interval']}.",
        f"- Operating point: highest threshold whose Pd lower bound on the calibration lanes is "
        f">= {sc['target_pd_lower_bound']}. Showing that needs at least "
        f"{_first_op(dets, 'min_mines_to_show_target')} mines, all detected; when the "
        "calibration set is too small, the threshold with the highest lower bound is used and "
        "the table says **target not met**.",
        "",
        "## Summary at the operating point (test lanes)",
        "",
        "| detector | threshold | target met | Pd [95% CI] | FA | FAR/m² | FAR/m | AUC | ECE |"
        " metal clutter rejected | loc. RMS (m) |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for name, r in dets.items():
        op = r["at_operating_point"]
        o = r["operating_point"]
        w = r["windows"]
        cr = op["clutter_rejection"]["metal"]
        lines.append(
            f"| {name} | {o['threshold']:.3f} | {'yes' if o['target_met'] else '**no**'} | "
            f"{_pd_cell(op['pd'])} | {op['n_false_alarms']} | {_f(op['far_m2'])} | "
            f"{_f(op['far_m'])} | {_f(w.get('auc'))} | {_f(w.get('ece'))} | {_pd_cell(cr)} | "
            f"{_f(op['localisation'].get('rms_m'))} |"
        )
    for name, why in doc.get("unavailable", {}).items():
        lines.append(f"| {name} | — | — | UNAVAILABLE: {why} | | | | | | | |")
    lines += [
        "",
        f"## At the configured alarm threshold ({sc['alarm_threshold']})",
        "",
        "| detector | Pd [95% CI] | FA | FAR/m² | duplicates | depth error RMS (m) | alarm ECE |",
        "|---|---|---|---|---|---|---|",
    ]
    for name, r in dets.items():
        a = r["at_alarm_threshold"]
        lines.append(
            f"| {name} | {_pd_cell(a['pd'])} | {a['n_false_alarms']} | {_f(a['far_m2'])} | "
            f"{a['n_duplicate_alarms']} | {_f(a['depth_error'].get('rms_m'))} | "
            f"{_f((a.get('alarm_calibration') or {}).get('ece'))} |"
        )
    for key, title in (
        ("pd_by_class", "Pd by class"),
        ("pd_by_kind", "Pd by kind"),
        ("pd_by_metal", "Pd by metal content"),
        ("pd_by_depth", "Pd by depth"),
        ("pd_by_soil", "Pd by soil"),
    ):
        groups = sorted(
            {g for r in dets.values() for g in r["at_operating_point"][key]}, key=group_order
        )
        if not groups:
            continue
        lines += [
            "",
            f"## {title} (operating point)",
            "",
            "| group | " + " | ".join(dets) + " |",
            "|---|" + "---|" * len(dets),
        ]
        for g in groups:
            cells = [_pd_cell(r["at_operating_point"][key].get(g, {})) for r in dets.values()]
            lines.append(f"| {g} | " + " | ".join(cells) + " |")
    if plots:
        lines += ["", "## Plots", ""] + [f"![{p}]({p})" for p in plots]
    path.write_text("\n".join(lines) + "\n")


def _first_op(dets: Mapping[str, Any], key: str) -> Any:
    for r in dets.values():
        return r["operating_point"].get(key)
    return "?"


def _example_lane_plot(
    out_dir: Path, dets: Mapping[str, Any], lane: Any, examples: Mapping[str, Any]
) -> list[str]:
    """``example_lane.png``: the lane's radargram (the one plotting module, detect.sinks.plot)
    with every detector's score profile, their thresholds and the truth outlined."""
    from dataclasses import replace

    from detect.blocks import GprBlock, MdBlock
    from detect.sinks.plot import DEFAULT_VELOCITY_M_NS, Radargram, concat, radargram_figures

    offsets = lane.offsets_m or {}

    def placed(kind: type) -> Any:
        b = concat(lane.blocks, kind)
        if b is None:
            return None
        return replace(b, position_m=b.position_m + float(offsets.get(b.header.sensor, 0.0)))

    gpr = placed(GprBlock)
    if gpr is not None:
        gpr = gpr.with_data(gpr.data - gpr.data.mean(axis=0))
    velocity, note = DEFAULT_VELOCITY_M_NS, "assumed"
    try:
        from detect.sim.soil import SOILS

        if lane.soil in SOILS:
            velocity, note = SOILS[lane.soil].velocity_m_ns, f"soil {lane.soil}"
    except ImportError:  # pragma: no cover - the simulator is part of the package
        pass
    thresholds = sorted(
        {
            float(r["operating_point"]["threshold"])
            for name, r in dets.items()
            if name in examples and math.isfinite(r["operating_point"]["threshold"])
        }
    )
    rg = Radargram(
        gpr=gpr,
        emi=placed(MdBlock),
        source=f"example lane {lane.lane_id}",
        instrument=lane.soil or "",
        steps=["GPR: mean trace removed (display only); EMI: as recorded"],
        velocity_m_ns=velocity,
        velocity_note=note,
        truth=lane.truth,
        track={
            "series": {
                name: {"position_m": ex["track_x_m"], "p_mine": ex["track_p"]}
                for name, ex in examples.items()
            },
            "thresholds": thresholds,
        },
        notes=["score profile of every detector; dashed: operating-point thresholds"],
    )
    names = []
    for k, fig in enumerate(radargram_figures(rg)):
        name = "example_lane.png" if k == 0 else f"example_lane_p{k + 1}.png"
        fig.savefig(out_dir / name, dpi=90)
        names.append(name)
    return names
