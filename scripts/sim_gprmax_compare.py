"""Compare the ray-based GPR simulator with gprMax (2-D FDTD) on canonical scenes.

Scenes: a 2 cm metal rod 0.2 m deep in moist sand (eps 9, 5 mS/m), once in homogeneous
soil and once with 70 small stones / wet pockets; antenna 5 cm above ground, 1.5 GHz
Ricker, 51 traces at 1 cm. gprMax is not a dependency: install it by hand
(``pip install gprMax``) to re-run; the figure and numbers are in docs/simulator.md.

    .venv/bin/python scripts/sim_gprmax_compare.py [--workdir /tmp/detect_gprmax]
"""

from __future__ import annotations

import argparse
import dataclasses
import math
import os
import random
import subprocess
import sys
from pathlib import Path

import h5py
import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
from scipy.signal import hilbert

from detect.sim.gpr import simulate_gpr
from detect.sim.motion import Trajectory
from detect.sim.scene import canonical_scene, place
from detect.sim.settings import GprSettings
from detect.sim.soil import C0_M_NS, SOILS, reflection_coefficient

EPS, SIGMA, H_M, DEPTH_M, RADIUS_M = 9.0, 0.005, 0.05, 0.20, 0.010
GROUND_Y, ANT_Y, N_TRACES, STEP_M = 0.300, 0.350, 51, 0.010
WINDOW_NS = 9.0

HEADER = """#domain: 0.600 0.400 0.002
#dx_dy_dz: 0.002 0.002 0.002
#time_window: 9e-9
#waveform: ricker 1 1.5e9 my_ricker
#hertzian_dipole: z 0.040 0.350 0 my_ricker
#rx: 0.060 0.350 0
#src_steps: 0.010 0 0
#rx_steps: 0.010 0 0
"""
SOIL = "#material: 9 0.005 1 0 soil\n#box: 0 0 0 0.600 0.300 0.002 soil\n"
ROD = "#cylinder: 0.300 0.090 0 0.300 0.090 0.002 0.010 pec\n"


def stones() -> list[tuple[float, float, float, str]]:
    rnd = random.Random(3)
    out: list[tuple[float, float, float, str]] = []
    while len(out) < 70:
        x, y, r = rnd.uniform(0.02, 0.58), rnd.uniform(0.01, 0.29), rnd.uniform(0.003, 0.008)
        if abs(x - 0.3) < 0.03 and abs(y - 0.09) < 0.03:
            continue
        out.append((x, y, r, rnd.choice(["stone", "wetspot"])))
    return out


STONE_EPS = {"stone": 5.0, "wetspot": 14.0}


def inputs() -> dict[str, tuple[str, int]]:
    st = "#material: 5 0.001 1 0 stone\n#material: 14 0.02 1 0 wetspot\n" + "".join(
        f"#cylinder: {x:.3f} {y:.3f} 0 {x:.3f} {y:.3f} 0.002 {r:.3f} {m}\n"
        for x, y, r, m in stones()
    )
    return {
        "air": ("#title: free space\n" + HEADER, 1),
        "bg": ("#title: soil only\n" + HEADER + SOIL, 1),
        "homog": ("#title: rod in homogeneous soil\n" + HEADER + SOIL + ROD, N_TRACES),
        "hetero": ("#title: rod in heterogeneous soil\n" + HEADER + SOIL + st + ROD, N_TRACES),
    }


def run_gprmax(work: Path) -> dict[str, np.ndarray]:
    out: dict[str, np.ndarray] = {}
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    for name, (text, n) in inputs().items():
        files = [work / (f"{name}.h5" if n == 1 else f"{name}{i + 1}.h5") for i in range(n)]
        if not all(f.exists() for f in files):
            (work / f"{name}.in").write_text(text)
            cmd = [sys.executable, "-m", "gprMax", f"{name}.in", "-n", str(n)]
            subprocess.run(cmd, cwd=work, env=env, check=True, capture_output=True)
        traces = []
        for f in files:
            with h5py.File(f, "r") as h:
                dt_ns = float(h.attrs["dt"]) * 1e9
                traces.append(np.asarray(h["rxs/rx1/Ez"]))
        t_src = np.arange(traces[0].size) * dt_ns
        t_ours = np.arange(int(WINDOW_NS / 0.0390625)) * 0.0390625
        out[name] = np.stack([np.interp(t_ours, t_src, tr) for tr in traces])
    return out


def ours() -> dict[str, np.ndarray]:
    g = GprSettings(
        noise=0.0, gain_drift=0.0, jitter_ns=0.0, time_zero_drift_ns=0.0, ringing=0.0,
        heterogeneity=True,
        n_samples=int(WINDOW_NS / 0.0390625), time_zero_ns=0.0,
    )  # fmt: skip
    soil = dataclasses.replace(SOILS["moist_sand"], eps_r=EPS, sigma_s_m=SIGMA, q=1e9,
                               layer_eps_r=EPS)  # fmt: skip
    x = 0.05 + STEP_M * np.arange(N_TRACES) - 0.3 + 1.0
    traj = Trajectory(np.arange(N_TRACES) * 0.01, x, np.zeros(N_TRACES), np.full(N_TRACES, H_M))
    rod = dataclasses.replace(
        place("shrapnel", 1.0, DEPTH_M - 0.0), diameter_m=2 * RADIUS_M, height_m=2 * RADIUS_M
    )
    scat = np.array(
        [
            (x0 - 0.3 + 1.0, 0.0, GROUND_Y - y0, reflection_coefficient(EPS, STONE_EPS[m]))
            for x0, y0, _, m in stones()
        ]
    )
    rng = np.random.default_rng(0)
    air = dataclasses.replace(soil, eps_r=1.0, layer_eps_r=1.0)
    res = {
        "air": simulate_gpr(canonical_scene([], air), traj, g, rng)[:1],
        "bg": simulate_gpr(canonical_scene([], soil), traj, g, rng)[:1],
        "homog": simulate_gpr(canonical_scene([rod], soil), traj, g, rng),
    }
    het = dataclasses.replace(canonical_scene([rod], soil), scatterers=scat)
    res["hetero"] = simulate_gpr(het, traj, g, rng)
    return {k: v.astype(np.float64) for k, v in res.items()}


def picks(d: dict[str, np.ndarray]) -> dict[str, float | np.ndarray]:
    dt = 0.0390625
    ground = d["bg"][0] - d["air"][0]
    target = d["homog"] - d["bg"][0]
    env_g = np.abs(hilbert(ground))
    env_t = np.abs(hilbert(target, axis=1))
    t_g = float(np.argmax(env_g)) * dt
    t_t = np.argmax(env_t, axis=1) * dt
    apex = N_TRACES // 2
    peak_t = target[apex, int(np.argmax(env_t[apex]))]
    peak_g = ground[int(np.argmax(env_g))]
    het = d["hetero"] - d["hetero"].mean(axis=0)
    late = slice(int((t_t[apex] + 1.2) / dt), None)
    clutter = float(np.sqrt(np.mean(het[:, late] ** 2)))
    return {
        "t_ground": t_g,
        "t_target": t_t,
        "apex_minus_ground": float(t_t[apex] - t_g),
        "amp_ratio": float(env_t[apex].max() / env_g.max()),
        "same_polarity": float(np.sign(peak_t) == np.sign(peak_g)),
        "signal_to_clutter": float(np.abs(het[apex]).max() / clutter),
    }


def snell_fit(x: np.ndarray, t: np.ndarray) -> float:
    from scipy.optimize import curve_fit

    frac = np.linspace(0, 1, 2001)

    def model(xx, x0, d, v):
        rho = np.abs(xx - x0)[:, None]
        u = rho * frac
        one = np.sqrt(H_M**2 + u**2) / C0_M_NS + np.sqrt(d**2 + (rho - u) ** 2) / v
        return 2 * one.min(axis=1)

    (_, _, v), _ = curve_fit(model, x, t - t.min() + model(np.array([0.3]), 0.3, 0.2, 0.1)[0],
                             p0=(0.3, 0.2, 0.1))  # fmt: skip
    return float(v)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--workdir", default="/tmp/detect_gprmax")
    ap.add_argument("--out", default="docs/img/sim_gprmax.png")
    args = ap.parse_args()
    work = Path(args.workdir)
    work.mkdir(parents=True, exist_ok=True)
    try:
        fd = run_gprmax(work)
    except (FileNotFoundError, subprocess.CalledProcessError) as exc:
        sys.exit(f"gprMax run failed or gprMax is not installed: {exc}")
    od = ours()
    pf, po = picks(fd), picks(od)
    x = 0.05 + STEP_M * np.arange(N_TRACES)
    sel = np.abs(x - 0.3) <= 0.15
    v_true = C0_M_NS / math.sqrt(EPS)
    tf, to = np.asarray(pf["t_target"]), np.asarray(po["t_target"])
    shape_rms = float(np.sqrt(np.mean(((tf - tf.min()) - (to - to.min()))[sel] ** 2)))
    print(f"soil velocity (true)                 {v_true:.4f} m/ns")
    print(f"velocity from Snell fit, gprMax      {snell_fit(x[sel], tf[sel]):.4f} m/ns")
    print(f"velocity from Snell fit, ours        {snell_fit(x[sel], to[sel]):.4f} m/ns")
    print(f"apex - ground reflection (ns)        gprMax {pf['apex_minus_ground']:.3f}  "
          f"ours {po['apex_minus_ground']:.3f}  "
          f"(ray theory {2 * DEPTH_M / v_true:.3f})")  # fmt: skip
    print(f"hyperbola shape rms difference       {shape_rms * 1000:.0f} ps over +-15 cm")
    print(f"target/ground amplitude at apex      gprMax {pf['amp_ratio']:.3f}  "
          f"ours {po['amp_ratio']:.3f}")  # fmt: skip
    print(f"target polarity = ground polarity    gprMax {bool(pf['same_polarity'])}  "
          f"ours {bool(po['same_polarity'])}")  # fmt: skip
    print(f"signal/clutter (heterogeneous)       gprMax {pf['signal_to_clutter']:.1f}  "
          f"ours {po['signal_to_clutter']:.1f}")  # fmt: skip

    fig, axs = plt.subplots(1, 5, figsize=(17, 3.6))
    ext = (x[0], x[-1], WINDOW_NS, 0)
    for ax, (name, d, bgk) in zip(
        axs[:4],
        [("gprMax, homogeneous", fd, "homog"), ("ours, homogeneous", od, "homog"),
         ("gprMax, heterogeneous", fd, "hetero"), ("ours, heterogeneous", od, "hetero")],
        strict=True,
    ):  # fmt: skip
        b = d[bgk] - (d["bg"][0] if bgk == "homog" else d[bgk].mean(axis=0))
        b = b / np.abs(d["homog"] - d["bg"][0]).max()
        ax.imshow(b.T, aspect="auto", cmap="seismic", vmin=-1, vmax=1, extent=ext)
        ax.set_title(name, fontsize=9)
        ax.set_xlabel("antenna x (m)", fontsize=8)
    axs[0].set_ylabel("time (ns)")
    axs[4].plot(x, tf - tf.min(), "k.", label="gprMax picks")
    axs[4].plot(x, to - to.min(), "r-", label="ours")
    axs[4].invert_yaxis()
    axs[4].set_title("hyperbola: envelope picks", fontsize=9)
    axs[4].set_xlabel("antenna x (m)", fontsize=8)
    axs[4].set_ylabel("t - t_apex (ns)", fontsize=8)
    axs[4].legend(fontsize=7)
    fig.tight_layout()
    from io import BytesIO

    from PIL import Image

    buf = BytesIO()
    fig.savefig(buf, dpi=70, format="png")
    buf.seek(0)
    Image.open(buf).convert("RGB").quantize(64).save(args.out, optimize=True)
    print(f"figure {args.out}")


if __name__ == "__main__":
    main()
