"""The fast simulator against gprMax on matched scenes: what differs, in numbers and a picture.

Every finished scene of the full-wave validation set (``scripts/fullwave_set.py``) is
simulated again by the fast ray simulator (``detect.sim.gpr``) with the same objects, soil,
seed and radar geometry (1.5 GHz, antennas 5 cm up, 1.4 cm steps); both go through the
default DSP chain onto the model's time axis. Per scene it measures:

* the **direct wave** of the raw traces (the ``reference`` step's amplitude and phase);
* after processing (units of the direct wave), below the ground bounce (from 1.5 ns after
  time zero): the **object echo**, the largest |value| within 8 cm of the object's centre;
  the **soil clutter**, the rms over the traces more than 15 cm from it (all traces in
  empty soil); their ratio; the echo's **polarity** (sign at its largest |value|) and its
  **spectral centroid**;
* the **surface residual**: the rms of the first 1.5 ns after time zero (the ground bounce
  of a rough surface, which the background removal leaves).

It prints medians by kind of object and FDTD/fast ratios, and draws matched scenes side by
side (``--png``). The differences it finds are what the simulator's domain randomisation
(``train.domain_jitter``) and the ``reference`` DSP step were built from (docs/fullwave.md).

    python scripts/fullwave_compare.py                       # the default cache
    python scripts/fullwave_compare.py --png docs/img/fullwave_vs_fast.png --json cmp.json
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from pathlib import Path
from typing import Any

import numpy as np

from detect.blocks import GprBlock, GprHeader
from detect.dsp.chain import build_chain
from detect.dsp.gpr import direct_wave_phasors
from detect.sim.fdtd.run import is_done, scene_dir
from detect.sim.fdtd.scenes import validation_scenes
from detect.sim.fdtd.settings import fdtd_settings_from
from detect.sim.gpr import simulate_gpr
from detect.sim.motion import Trajectory
from detect.sim.scene import canonical_scene
from detect.sim.settings import GprSettings
from detect.sim.targets import LIBRARY

NEAR_M = 0.08
FAR_M = 0.15
BELOW_GROUND_NS = 1.5
GROUPS = ("ap/at mine", "uxo", "metal clutter", "other clutter", "empty")


def group_of(kind: str) -> str:
    if kind == "empty":
        return "empty"
    k = LIBRARY[kind]
    if k.cls in ("ap_mine", "at_mine"):
        return "ap/at mine"
    if k.cls == "uxo":
        return "uxo"
    return "metal clutter" if k.metal_mass_g > 1.0 else "other clutter"


def dsp_steps() -> list[dict[str, Any]]:
    import detect
    from detect.config import to_dict

    return list(to_dict(detect.compose([]).dsp)["gpr"])


def process(block: GprBlock, steps: list[dict[str, Any]]) -> tuple[np.ndarray, float, float]:
    """The model's input (traces x samples on its time axis), its sample interval and
    the time of time zero on it."""
    out = build_chain(steps, "gpr").process(block)
    h = out.header
    return np.asarray(out.data, dtype=np.float64), float(h.dt_ns), float(h.time_zero_ns)


def fast_block(scene: Any, s: Any, dt_ns: float, n_samples: int, t0_ns: float) -> GprBlock:
    """The fast simulator on the FDTD scan's positions and radar (noise and drifts off,
    the soil's point scatterers and rough surface on)."""
    sc = canonical_scene(
        list(scene.targets), scene.soil, length_m=scene.length_m, seed=scene.seed,
        scatterers=True, flat=False,
    )  # fmt: skip
    x = np.arange(s.n_traces) * s.trace_step_m
    traj = Trajectory(
        np.arange(x.size) * 0.02, x, np.zeros_like(x), np.full_like(x, s.antenna_height_m)
    )
    g = GprSettings(
        centre_hz=s.centre_hz, n_samples=n_samples, dt_ns=dt_ns, time_zero_ns=t0_ns,
        noise=0.0, gain_drift=0.0, jitter_ns=0.0, time_zero_drift_ns=0.0,
    )  # fmt: skip
    data = simulate_gpr(sc, traj, g, np.random.default_rng(scene.seed))
    hdr = GprHeader(dt_ns=dt_ns, time_zero_ns=t0_ns, antenna_hz=s.centre_hz, sensor="gpr")
    return GprBlock.build(data, hdr, seq=np.arange(x.size), host_time_s=traj.time_s, position_m=x)


def measures(
    proc: np.ndarray, dt_ns: float, t0_ns: float, x_m: np.ndarray, target_x: float | None
) -> dict[str, float]:
    full = np.where(np.isfinite(proc), proc, 0.0)
    k0 = max(0, round(t0_ns / dt_ns))
    k1 = k0 + round(BELOW_GROUND_NS / dt_ns)
    surface = float(np.sqrt(np.mean(full[:, k0:k1] ** 2)))
    p = full[:, k1:]
    if target_x is None:
        far = np.ones(x_m.size, bool)
        near = np.zeros(x_m.size, bool)
    else:
        d = np.abs(x_m - target_x)
        near, far = d <= NEAR_M, d > FAR_M
    clutter = float(np.sqrt(np.mean(p[far] ** 2))) if far.any() else math.nan
    out = {"surface": surface, "clutter": clutter, "echo": math.nan, "ratio": math.nan,
           "polarity": math.nan, "centroid_ghz": math.nan}  # fmt: skip
    if near.any():
        seg = p[near]
        i, j = np.unravel_index(int(np.argmax(np.abs(seg))), seg.shape)
        echo = float(abs(seg[i, j]))
        tr = seg[i]
        spec = np.abs(np.fft.rfft(tr * np.hanning(tr.size)))
        f = np.fft.rfftfreq(tr.size, dt_ns)
        out.update(
            echo=echo,
            ratio=echo / clutter if clutter > 0 else math.nan,
            polarity=float(np.sign(seg[i, j])),
            centroid_ghz=float((f * spec).sum() / spec.sum()),
        )
    return out


def compare(n: int | None, steps: list[dict[str, Any]]) -> list[dict[str, Any]]:
    import detect

    s = fdtd_settings_from({})
    cache = s.cache_path()
    rows = []
    for name, scene, info in validation_scenes(s, n):
        from detect.sim.fdtd.scenes import job_for

        folder = scene_dir(cache, job_for(scene, s, name, info=info))
        if not is_done(folder):
            continue
        fw = detect.read_gpr(folder / "session.h5").block
        fast = fast_block(scene, s, fw.header.dt_ns, fw.n_samples, fw.header.time_zero_ns)
        tx = float(scene.targets[0].x_m) if scene.targets else None
        row: dict[str, Any] = {"name": name, "kind": info["kind"], "group": group_of(info["kind"])}
        for label, blk in (("fdtd", fw), ("fast", fast)):
            z = direct_wave_phasors(np.asarray(blk.data[:16]))
            proc, dt, t0 = process(blk, steps)
            m = measures(proc, dt, t0, np.asarray(blk.position_m, float), tx)
            row[label] = {
                "direct_amp": float(np.median(np.abs(z))),
                "direct_phase_deg": float(np.degrees(np.angle(np.mean(z / np.abs(z))))),
                **m,
                "_proc": proc,
            }
        rows.append(row)
        f, q = row["fdtd"], row["fast"]
        print(
            f"{name:34s} echo {f['echo']:.3f}/{q['echo']:.3f}  clutter {f['clutter']:.4f}/"
            f"{q['clutter']:.4f}  polarity {f['polarity']:+.0f}/{q['polarity']:+.0f}",
            flush=True,
        )
    return rows


def summary(rows: list[dict[str, Any]]) -> dict[str, Any]:
    def med(vals: list[float]) -> float:
        v = [x for x in vals if np.isfinite(x)]
        return float(np.median(v)) if v else math.nan

    out: dict[str, Any] = {
        "n_scenes": len(rows),
        "direct_amp": {k: med([r[k]["direct_amp"] for r in rows]) for k in ("fdtd", "fast")},
        "direct_phase_deg": {
            k: med([r[k]["direct_phase_deg"] for r in rows]) for k in ("fdtd", "fast")
        },
        "groups": {},
    }
    for g in GROUPS:
        rs = [r for r in rows if r["group"] == g]
        if not rs:
            continue
        e = {k: {m: med([r[k][m] for r in rs])
                 for m in ("echo", "clutter", "ratio", "centroid_ghz", "surface")}
             for k in ("fdtd", "fast")}  # fmt: skip
        agree = [r["fdtd"]["polarity"] == r["fast"]["polarity"] for r in rs if g != "empty"]
        out["groups"][g] = {
            "n": len(rs),
            **e,
            "echo_fdtd_over_fast": e["fdtd"]["echo"] / e["fast"]["echo"] if g != "empty" else None,
            "clutter_fdtd_over_fast": e["fdtd"]["clutter"] / e["fast"]["clutter"],
            "polarity_agrees": f"{sum(agree)}/{len(agree)}" if agree else None,
        }
    return out


def print_summary(sm: dict[str, Any]) -> None:
    print(f"\n{sm['n_scenes']} matched scenes (FDTD / fast simulator)")
    print(
        f"direct wave: amplitude {sm['direct_amp']['fdtd']:.4g} / {sm['direct_amp']['fast']:.4g}, "
        f"phase {sm['direct_phase_deg']['fdtd']:+.0f} / {sm['direct_phase_deg']['fast']:+.0f} deg"
    )
    print("| objects | n | echo (direct-wave units) | soil clutter rms | echo / clutter | "
          "echo FDTD/fast | clutter FDTD/fast | surface residual rms | polarity agrees | "
          "centroid GHz |")  # fmt: skip
    print("|---|---|---|---|---|---|---|---|---|---|")
    for g, v in sm["groups"].items():
        f, q = v["fdtd"], v["fast"]
        ratio = "-" if v["echo_fdtd_over_fast"] is None else f"{v['echo_fdtd_over_fast']:.2f}"
        print(
            f"| {g} | {v['n']} | {f['echo']:.3f} / {q['echo']:.3f} | {f['clutter']:.4f} / "
            f"{q['clutter']:.4f} | {f['ratio']:.1f} / {q['ratio']:.1f} | {ratio} | "
            f"{v['clutter_fdtd_over_fast']:.2f} | {f['surface']:.3f} / {q['surface']:.3f} | "
            f"{v['polarity_agrees'] or '-'} | "
            f"{f['centroid_ghz']:.2f} / {q['centroid_ghz']:.2f} |"
        )


def picture(rows: list[dict[str, Any]], path: Path, per_group: int = 1) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    pick = []
    for g in GROUPS:
        pick += [r for r in rows if r["group"] == g][:per_group]
    fig, axes = plt.subplots(2, len(pick), figsize=(2.6 * len(pick), 6.2), squeeze=False)
    for c, r in enumerate(pick):
        for k, label in enumerate(("fdtd", "fast")):
            proc = r[label]["_proc"]
            both = np.abs(np.concatenate([r["fdtd"]["_proc"].ravel(), r["fast"]["_proc"].ravel()]))
            lim = max(float(np.nanpercentile(both, 99)), 1e-6)
            ax = axes[k, c]
            n_t = np.isfinite(proc).any(axis=0).nonzero()[0]
            last = int(n_t.max()) + 1 if n_t.size else proc.shape[1]
            ax.imshow(np.nan_to_num(proc[:, :last]).T, aspect="auto", cmap="seismic",
                      vmin=-lim, vmax=lim)  # fmt: skip
            who = "gprMax" if label == "fdtd" else "fast sim"
            soil = r["name"].split("_")[-1]
            ax.set_title(f"{who}: {r['kind']}\n{soil}  echo {r[label]['echo']:.3f}", fontsize=8)
            ax.set_xticks([])
            ax.set_yticks([])
    axes[0, 0].set_ylabel("gprMax 2-D (model input)")
    axes[1, 0].set_ylabel("fast simulator, same scene")
    fig.suptitle("Matched scenes after the DSP chain, in units of the direct wave "
                 "(one colour scale per scene: 99th percentile of |x|)", fontsize=10)  # fmt: skip
    fig.tight_layout()
    fig.savefig(path, dpi=90)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--n", type=int, help="scenes of the validation set to look for (default 48)")
    p.add_argument("--png", help="draw one matched scene per kind of object here")
    p.add_argument("--json", help="write the per-scene measures and the summary here")
    args = p.parse_args(argv)
    import detect
    from detect.engine.build import limit_threads

    limit_threads(detect.compose([]))
    rows = compare(args.n, dsp_steps())
    if not rows:
        print("no finished full-wave scenes: run scripts/fullwave_set.py first", file=sys.stderr)
        return 1
    sm = summary(rows)
    print_summary(sm)
    if args.png:
        picture(rows, Path(args.png))
    if args.json:
        plain = [{k: ({m: w for m, w in v.items() if m != "_proc"} if isinstance(v, dict) else v)
                  for k, v in r.items()} for r in rows]  # fmt: skip
        Path(args.json).write_text(json.dumps({"summary": sm, "scenes": plain}, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
