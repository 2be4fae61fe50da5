"""Every figure the README, docs and model cards state, with the run that produced it.

    .venv/bin/python scripts/figures.py --run benchmark,pipeline,quality [--render]
    .venv/bin/python scripts/figures.py --render      # write docs/figures.json into the docs
    .venv/bin/python scripts/figures.py --check       # exit 1 where a doc disagrees with it

``--run`` re-runs those benchmark scripts (one at a time; prefix ``nice -n 10`` on a shared
machine), parses what they print or write, and updates ``docs/figures.json``: per run the
exact command, the date, the models' weight hashes and a note; per figure its text and run.
Runs not named keep their entries, so a figure that was not regenerated still says where it
came from. ``--render`` writes each figure into the README, ``docs/*.md`` and the model cards
between ``<!-- fig:KEY -->`` and ``<!-- /fig -->``; ``--check`` is what tests/test_figures.py
asserts (also: the configs' thresholds name their run and equal its figures, and the
shipped weights are the ones the benchmark figures were measured with).

Runs: ``benchmark`` (scripts/benchmark.py, ~4 min on 2 shared cores; the variants
``benchmark_perfect_odometer`` and ``benchmark_wheel_1pct`` as quoted in the README), ``pipeline``
(scripts/bench_pipeline.py; ``--rss-data-s`` sets the memory run, 3600 s of data takes
a few minutes), ``quality`` (the held-out metrics in each model card.json, as written by
``scripts/model_quality.py --write-cards``; ``--rerun-quality`` runs that first, ~10 min),
``uci`` (scripts/uci_benchmark.py, needs the UCI file), ``emi`` (the simulator's EMI
first-gate table in docs/simulator.md, computed here), ``gprmax`` (scripts/sim_gprmax_compare.py,
needs gprMax installed by hand).
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import re
import subprocess
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
FIGURES = REPO / "docs" / "figures.json"
DOCS = ("README.md", "docs/*.md", "models/*/card.md")
MARK = re.compile(r"<!-- fig:([A-Za-z0-9_.\-]+) -->(.*?)<!-- /fig -->", re.S)
PY = sys.executable
#: figure prefix -> folder holding a finished benchmark run's stdout.txt and --out JSONs
REUSE: dict[str, Path] = {}
MODELS = ("fused", "gpr_only", "emi_only")
DETECTOR_ROWS = (
    ("fused", "fused"),
    ("fused (EMI missing)", "fused, EMI missing"),
    ("fused (GPR missing)", "fused, GPR missing"),
    ("gpr_only", "gpr_only"),
    ("emi_only", "emi_only"),
    ("gpr_energy_cfar", "GPR energy / CFAR (classical)"),
    ("emi_threshold", "EMI threshold (classical)"),
)


def doc_files() -> list[Path]:
    out: list[Path] = []
    for pattern in DOCS:
        out += sorted(REPO.glob(pattern))
    return out


def load() -> dict[str, Any]:
    if FIGURES.exists():
        return json.loads(FIGURES.read_text())
    return {"runs": {}, "figures": {}}


def weights_sha() -> dict[str, str]:
    out = {}
    for name in MODELS:
        card = json.loads((REPO / "models" / name / "card.json").read_text())
        out[name] = card["weights"]["sha256"]
    return out


def run_script(args: list[str]) -> str:
    """Run a script from the repository root; its stdout (stderr passes through)."""
    print("$ " + " ".join(args), file=sys.stderr)
    res = subprocess.run(args, cwd=REPO, stdout=subprocess.PIPE, text=True, check=False)
    if res.returncode != 0:
        raise SystemExit(f"figures: '{' '.join(args)}' exited {res.returncode}")
    return res.stdout


def _f3(v: float) -> str:
    return f"{v:.3f}"


def _grab(pattern: str, text: str, what: str) -> re.Match[str]:
    m = re.search(pattern, text)
    if m is None:
        raise SystemExit(f"figures: no '{what}' in the output (pattern {pattern!r})")
    return m


# --------------------------------------------------------------------------- runs


def run_benchmark(
    work: Path, extra: list[str], prefix: str = "benchmark", fixed: tuple[str, ...] = ()
) -> tuple[dict[str, str], str]:
    """``fixed``: config overrides of a variant run (its figures are keyed ``prefix.*``)."""
    out = work / "benchmark"
    cmd = [PY, "scripts/benchmark.py", "--out", str(out), *extra, *fixed]
    if REUSE.get(prefix):  # a run already made with exactly these settings
        out = REUSE[prefix]
        stdout = (out / "stdout.txt").read_text()
    else:
        stdout = run_script(cmd)
    lines = stdout.splitlines()
    start = next(i for i, ln in enumerate(lines) if ln.startswith("scenario"))
    end = next(i for i, ln in enumerate(lines) if ln.startswith("total"))
    total_s = _grab(r"total (\d+) s", stdout, "total").group(1)
    table = "\n".join(
        ["```", "$ .venv/bin/python scripts/benchmark.py      # 12 test + 12 calibration lanes per "
         "scenario", *lines[start:end], "```"]
    )  # fmt: skip
    figs = {f"{prefix}.table": table, f"{prefix}.total_s": total_s}
    for path in sorted(out.glob("*.json")):
        doc = json.loads(path.read_text())
        sc = doc["scenario"]
        for det, r in doc["detectors"].items():
            key = f"{prefix}.{sc}.{det}"
            op, pd = r["at_operating_point"], r["at_operating_point"]["pd"]
            figs[f"{key}.threshold"] = _f3(r["operating_point"]["threshold"])
            figs[f"{key}.pd"] = f"{pd['k']}/{pd['n']}"
            figs[f"{key}.far_m2"] = _f3(op["far_m2"])
            figs[f"{key}.auc"] = _f3(r["windows"]["auc"])
            at = r.get("at_alarm_threshold") or {}
            if at.get("pd"):
                figs[f"{key}.at_alarm_threshold"] = (
                    f"{_f3(at['threshold'])}: {at['pd']['k']}/{at['pd']['n']}, "
                    f"FAR {_f3(at['far_m2'])}/m2"
                )
            froc = r["froc"] if det == "fused" else {"threshold": [], "k": [], "far_m2": []}
            for thr, k, far in zip(froc["threshold"], froc["k"], froc["far_m2"], strict=True):
                figs[f"{key}.froc.{thr:.3f}"] = f"{k}/{froc['n']}, FAR {_f3(far)}/m2"
    return figs, " ".join(["scripts/benchmark.py", "--out DIR", *extra, *fixed])


def run_pipeline(work: Path, extra: list[str]) -> tuple[dict[str, str], str]:
    cmd = [PY, "scripts/bench_pipeline.py", *extra]
    text = run_script(cmd)
    lat = _grab(r"block->decision p50 ([\d.]+) ms, p99 ([\d.]+) ms", text, "latency")
    frame = _grab(r"time stamp->decision p50 ([\d.]+) ms, p99 ([\d.]+) ms", text, "frame")
    cpu = _grab(r"CPU ([\d.]+) % of one core", text, "CPU")
    sim = _grab(r"simulator alone \(read and drop\): ([\d.]+) %", text, "sim CPU")
    scan = _grab(r"scan (\d+)x real time", text, "scan x real time")
    rss = _grab(
        r"rss over (\d+) s of simulated data in \d+ s wall \(([\d.]+)x real time.*?\): "
        r"start ([\d.]+) MB, end ([\d.]+) MB; (.*)",
        text,
        "rss",
    )
    marks = [int(m) for m in re.findall(r"\d+s:(\d+)MB", rss.group(5))]
    figs = {
        "pipeline.latency_p50_ms": f"{float(lat.group(1)):.1f}",
        "pipeline.latency_p99_ms": f"{float(lat.group(2)):.1f}",
        "pipeline.frame_latency_p50_ms": f"{float(frame.group(1)):.1f}",
        "pipeline.frame_latency_p99_ms": f"{float(frame.group(2)):.0f}",
        "pipeline.cpu_pct": f"{float(cpu.group(1)):.1f}",
        "pipeline.sim_cpu_pct": f"{float(sim.group(1)):.1f}",
        "pipeline.scan_x_realtime": scan.group(1),
        "pipeline.rss_data_s": rss.group(1),
        "pipeline.rss_x_realtime": f"{float(rss.group(2)):.0f}",
        "pipeline.rss_start_mb": f"{float(rss.group(3)):.0f}",
        "pipeline.rss_end_mb": f"{float(rss.group(4)):.0f}",
    }
    if len(marks) > 1:
        figs["pipeline.rss_5min_mb"] = str(marks[1])
        figs["pipeline.rss_after_5min_range_mb"] = f"{min(marks[1:])}-{max(marks[1:])}"
    return figs, " ".join(["scripts/bench_pipeline.py", *extra])


def _ci(v: Any) -> str:
    return f"{v[0]:.3f} [{v[1]:.3f}, {v[2]:.3f}]" if isinstance(v, list) else f"{v:.3f}"


def _val(v: Any) -> str:
    return f"{(v[0] if isinstance(v, list) else v):.3f}"


def quality_figures(metrics: dict[str, Any]) -> dict[str, str]:
    """README quality table and the figures it quotes, from a card's metrics block."""
    figs: dict[str, str] = {}
    rows = [
        "| detector | AUC, clean windows [95% CI] | ECE | AUC, all windows | min-metal AP vs "
        "clutter | mines in clutter vs clutter |",
        "|---|---|---|---|---|---|",
    ]
    for det, label in DETECTOR_ROWS:
        m = metrics[det]
        for k in ("auc", "ece", "auc_all_windows", "ece_p_gt_0_1"):
            figs[f"quality.{det}.{k}"] = _ci(m[k])
        first = det == "fused"
        cells = [
            _ci(m["auc"]) if first else _val(m["auc"]),
            _val(m["ece"]),
            _ci(m["auc_all_windows"]) if first else _val(m["auc_all_windows"]),
            _val(m["min_metal_ap_vs_clutter_auc"]),
            _val(m["mine_among_clutter_vs_clutter_auc"]),
        ]
        rows.append(f"| {label} | " + " | ".join(cells) + " |")
    figs["quality.table"] = "\n".join(rows)
    figs["quality.fused.ece_p_gt_0_1.value"] = _val(metrics["fused"]["ece_p_gt_0_1"])
    return figs


def run_quality(work: Path, extra: list[str]) -> tuple[dict[str, str], str]:
    if "--rerun-quality" in extra:
        run_script([PY, "scripts/model_quality.py", "--write-cards"])
    card = json.loads((REPO / "models" / "fused" / "card.json").read_text())
    return quality_figures(card["metrics"]), "scripts/model_quality.py --write-cards"


def run_uci(work: Path, extra: list[str]) -> tuple[dict[str, str], str]:
    cmd = [PY, "scripts/uci_benchmark.py", "--repeats", "5", *extra]
    lines = run_script(cmd).splitlines()
    head = next(i for i, ln in enumerate(lines) if ln.startswith("classifier"))
    body = [ln.rsplit(None, 1)[0] for ln in lines[head:]]  # the time column is not a figure
    table = "\n".join(
        ["```", "$ .venv/bin/python scripts/uci_benchmark.py --repeats 5", *body, "```"]
    )
    return {"uci.table": table}, "scripts/uci_benchmark.py --repeats 5"


def _snr(v: float) -> str:
    """As the table shows them: 2 significant digits, whole numbers from 100, 7.5e4 style."""
    if v >= 1e4:
        mant, exp = f"{v:.1e}".split("e")
        return f"{mant.rstrip('0').rstrip('.')}e{int(exp)}"
    return f"{v:.0f}" if v >= 100 else f"{v:.2g}"


def run_emi(work: Path, extra: list[str]) -> tuple[dict[str, str], str]:
    """First-gate peak over each object in units of the noise rms (head 5 cm up, no soil)."""
    import numpy as np

    from detect.sim.emi import target_params, target_response
    from detect.sim.scene import place
    from detect.sim.settings import EmiSettings

    e = EmiSettings()
    gates = np.geomspace(1e-5, 1e-3, 8)
    rows = []
    for key, label in (("pma2", "PMA-2"), ("vs50", "VS-50"), ("type72", "Type 72A"),
                       ("pmn2", "PMN-2"), ("shrapnel", "shrapnel"),
                       ("bottle_cap", "bottle cap"), ("tm62m", "TM-62M")):  # fmt: skip
        cells = []
        for depth in (0.0, 0.05, 0.10, 0.15, 0.20):
            t = place(key, 1.0, depth)
            x = np.array([1.0])
            v = target_response((t,), x, x * 0, x * 0 + 0.05, gates, e.coil_radius_m)[0, 0]
            cells.append(_snr(v / e.noise_v))
        gamma = target_params(t)[2]
        mass = t.kind.metal_mass_g
        gtxt = f"{gamma * 1e3:.1f} ms" if gamma >= 1e-3 else f"{gamma * 1e6:.0f} us"
        mtxt = f"{mass / 1e3:g} kg" if mass >= 1000 else f"{mass:g} g"
        rows.append(f"| {label} | {mtxt} | {gtxt} | " + " | ".join(cells) + " |")
    table = "\n".join(
        ["| Object | Metal | gamma | 0 cm | 5 cm | 10 cm | 15 cm | 20 cm |",
         "|---|---|---|---|---|---|---|---|", *rows]
    )  # fmt: skip
    return {"emi.first_gate_table": table}, "scripts/figures.py --run emi (target_response)"


def run_gprmax(work: Path, extra: list[str]) -> tuple[dict[str, str], str]:
    text = run_script([PY, "scripts/sim_gprmax_compare.py", "--workdir", str(work / "gprmax")])
    v_g = _grab(r"Snell fit, gprMax\s+([\d.]+)", text, "velocity gprMax").group(1)
    v_o = _grab(r"Snell fit, ours\s+([\d.]+)", text, "velocity ours").group(1)
    apex = _grab(r"gprMax ([\d.]+)\s+ours ([\d.]+)\s+\(ray theory ([\d.]+)\)", text, "apex")
    shape = _grab(r"rms difference\s+(\d+) ps", text, "shape").group(1)
    amp = _grab(r"amplitude at apex\s+gprMax ([\d.]+)\s+ours ([\d.]+)", text, "amplitude")
    clut = _grab(
        r"signal/clutter \(heterogeneous\)\s+gprMax ([\d.]+)\s+ours ([\d.]+)", text, "clutter"
    )
    figs = {
        "gprmax.apex_ns.gprmax": apex.group(1),
        "gprmax.apex_ns.ours": apex.group(2),
        "gprmax.apex_ns.ray": apex.group(3),
        "gprmax.shape_rms_ps": shape,
        "gprmax.velocity.gprmax": f"{float(v_g):.3f}",
        "gprmax.velocity.ours": f"{float(v_o):.3f}",
        "gprmax.amplitude.gprmax": amp.group(1),
        "gprmax.amplitude.ours": amp.group(2),
        "gprmax.clutter.gprmax": clut.group(1),
        "gprmax.clutter.ours": clut.group(2),
    }
    v_true = _grab(r"soil velocity \(true\)\s+([\d.]+)", text, "true velocity").group(1)
    pol = _grab(r"polarity\s+gprMax (\w+)\s+ours (\w+)", text, "polarity")
    yes = {"True": "yes", "False": "no"}
    rows = [
        "| Measure | gprMax | ours | note |",
        "|---|---|---|---|",
        f"| apex minus ground bounce (ns) | {apex.group(1)} | {apex.group(2)} | "
        f"ray theory {apex.group(3)} |",
        f"| hyperbola shape (envelope picks, +-15 cm) | | | {shape} ps rms difference |",
        f"| velocity from a Snell-hyperbola fit (true {v_true} m/ns) | "
        f"{figs['gprmax.velocity.gprmax']} | {figs['gprmax.velocity.ours']} | |",
        f"| target / ground-bounce amplitude at apex | {amp.group(1)} | {amp.group(2)} | |",
        f"| target polarity = ground-bounce polarity | {yes[pol.group(1)]} | "
        f"{yes[pol.group(2)]} | |",
        f"| target / clutter rms (heterogeneous) | {clut.group(1)} | {clut.group(2)} | |",
    ]
    figs["gprmax.table"] = "\n".join(rows)
    return figs, "scripts/sim_gprmax_compare.py (gprMax 4.0.1)"


def _variant(prefix: str, *fixed: str) -> Callable[[Path, list[str]], tuple[dict[str, str], str]]:
    def run(work: Path, extra: list[str]) -> tuple[dict[str, str], str]:
        figs, cmd = run_benchmark(work, extra, prefix, fixed)
        return {k: v for k, v in figs.items() if not k.endswith("table")}, cmd

    return run


RUNS: dict[str, Callable[[Path, list[str]], tuple[dict[str, str], str]]] = {
    "benchmark": run_benchmark,
    "benchmark_perfect_odometer": _variant("odometer_off", "sim.odometer.enabled=false"),
    "benchmark_wheel_1pct": _variant("wheel_1pct", "sim.odometer.scale_sigma=0.01"),
    "pipeline": run_pipeline,
    "quality": run_quality,
    "uci": run_uci,
    "emi": run_emi,
    "gprmax": run_gprmax,
}
#: the README/docs settings of each run; ``--args RUN="..."`` replaces them (say why in --note)
DEFAULT_ARGS = {"pipeline": ["--live-s", "20", "--rss-data-s", "3600"]}


# --------------------------------------------------------------------------- render/check


def mismatches(figs: dict[str, Any], files: list[Path] | None = None) -> list[str]:
    """One line per doc marker whose text differs from docs/figures.json (or is unknown)."""
    out = []
    for path in doc_files() if files is None else files:
        for m in MARK.finditer(path.read_text()):
            key, shown = m.group(1), m.group(2)
            want = figs.get(key, {}).get("text")
            if want is None:
                out.append(f"{path.name}: figure '{key}' is not in {FIGURES.name}")
            elif shown != want:
                out.append(f"{path.name}: figure '{key}' shows {shown!r}, "
                           f"{FIGURES.name} has {want!r}")  # fmt: skip
    return out


def render(figs: dict[str, Any]) -> list[Path]:
    changed = []
    for path in doc_files():
        text = path.read_text()

        def sub(m: re.Match[str]) -> str:
            want = figs.get(m.group(1), {}).get("text")
            return m.group(0) if want is None else f"<!-- fig:{m.group(1)} -->{want}<!-- /fig -->"

        new = MARK.sub(sub, text)
        if new != text:
            path.write_text(new)
            changed.append(path)
    return changed


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--run", default="", help=f"comma-separated, of {', '.join(RUNS)}")
    ap.add_argument("--args", action="append", default=[], metavar="RUN=ARGS",
                    help="replace a run's arguments, e.g. pipeline='--rss-data-s 600'")  # fmt: skip
    ap.add_argument("--note", action="append", default=[], metavar="RUN=TEXT",
                    help="a note stored with the run (e.g. why a setting was reduced)")  # fmt: skip
    ap.add_argument("--reuse", action="append", default=[], metavar="PREFIX=DIR",
                    help="parse a benchmark run already made with the same settings: DIR "
                    "holds its stdout.txt and its --out JSONs")  # fmt: skip
    ap.add_argument("--render", action="store_true")
    ap.add_argument("--check", action="store_true")
    args = ap.parse_args(argv)
    doc = load()
    over = dict(a.split("=", 1) for a in args.args)
    notes = dict(a.split("=", 1) for a in args.note)
    REUSE.update({k: Path(v) for k, v in (a.split("=", 1) for a in args.reuse)})
    names = [r.strip() for r in args.run.split(",") if r.strip()]
    unknown = [r for r in names if r not in RUNS]
    if unknown:
        print(f"figures: unknown run '{unknown[0]}'; known: {', '.join(RUNS)}", file=sys.stderr)
        return 2
    for name in names:
        extra = over[name].split() if name in over else DEFAULT_ARGS.get(name, [])
        load0 = os.getloadavg()[0]
        with tempfile.TemporaryDirectory() as tmp:
            figs, command = RUNS[name](Path(tmp), extra)
        load1 = os.getloadavg()[0]
        doc["figures"] = {k: v for k, v in doc["figures"].items() if v.get("run") != name}
        # tables stand on lines of their own between the markers
        figs = {k: f"\n{v}\n" if k.endswith("table") else v for k, v in figs.items()}
        doc["figures"] |= {k: {"text": v, "run": name} for k, v in figs.items()}
        doc["runs"][name] = {
            "command": command,
            "date": dt.date.today().isoformat(),
            "weights_sha256": weights_sha(),
            "note": notes.get(name, ""),
            # timings on a shared machine depend on what else runs: say how busy it was
            "load_average_1min": [round(load0, 1), round(load1, 1)],
            "cpus": os.cpu_count(),
        }
        doc["figures"] = dict(sorted(doc["figures"].items()))
        FIGURES.write_text(json.dumps(doc, indent=1, ensure_ascii=False) + "\n")
        print(f"{name}: {len(figs)} figures -> {FIGURES.relative_to(REPO)}", file=sys.stderr)
    if args.render:
        for path in render(doc["figures"]):
            print(f"rendered {path.relative_to(REPO)}", file=sys.stderr)
    if args.check:
        bad = mismatches(doc["figures"])
        for line in bad:
            print(line, file=sys.stderr)
        return 1 if bad else 0
    return 0


if __name__ == "__main__":
    sys.exit(main())
