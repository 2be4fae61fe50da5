"""CPU share and memory of the live pipeline process: ``source=sensor_head`` vs ``source=sim``.

Each case runs the real command line, ``detect run ... run.display=false`` (recording on,
the configured model), as its own process; for the sensor head a ``detect emulate`` (TCP)
process plays the device with the synthetic feed, at the same rates as the simulator
(GPR 100 traces/s x 512 samples, EMI 1 kHz x 8 gates, odometer 100 Hz). The figures are
the pipeline process's own CPU time (``/proc/PID/stat`` utime + stime, all its threads)
over the wall time of the measured span, which starts at the run's first EMI state line
(start-up and imports excluded), so they hold on a machine that other work shares. RSS
is sampled from ``/proc/PID/status`` every second (and printed every minute).

The faulted case adds extreme wire faults (0.1 % flipped bytes, 10 % dropped frames,
20 garbage bursts of 2 kB per second, an unplug every 45 s) and a small reader queue
(``--queue-size``, overflows), and prints RSS along the way, the link-error totals from
the run's final summary and how many "consumer behind" lines the log got.

    .venv/bin/python scripts/bench_sensor_head.py [--seconds 30] [--repeat 1]
        [--faulted-s 60] [--only faulted|clean|sim] [--head-arg +source.read_interval_s=0]

Prints figures; asserts nothing. Linux only (``/proc``).
"""

from __future__ import annotations

import argparse
import os
import re
import signal
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

DETECT = [sys.executable, "-m", "detect.cli"]
EXTREME = [
    "emulate.faults.corrupt_byte_rate=0.001",
    "emulate.faults.drop_frame_rate=0.1",
    "emulate.faults.garbage_rate_hz=20",
    "emulate.faults.garbage_bytes=2048",
    "emulate.faults.unplug_every_s=45",
    "emulate.faults.unplug_s=2",
]
CLK_TCK = os.sysconf("SC_CLK_TCK")


def cpu_s(pid: int) -> float:
    """utime + stime of every thread of ``pid`` so far, in seconds."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLK_TCK


def main_thread_cpu_s(pid: int) -> float:
    """CPU seconds of the main thread (the pipeline loop); the rest of the process is the
    reader thread plus library threads (Python 3.11 does not name threads for the OS)."""
    fields = Path(f"/proc/{pid}/task/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLK_TCK


def rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


@dataclass
class Measured:
    cpu_pct: float = float("nan")
    main_pct: float = float("nan")
    span_s: float = 0.0
    rss_start_mib: float = float("nan")
    rss_end_mib: float = float("nan")
    rss_max_mib: float = float("nan")
    rss_marks: list[tuple[float, float]] = field(default_factory=list)
    tail: list[str] = field(default_factory=list)
    n_behind: int = 0


class Lines:
    """Collects a process's output lines in a thread; ``ready`` once a marker is seen."""

    def __init__(self, proc: subprocess.Popen[str], marker: str) -> None:
        self.lines: list[str] = []
        self.ready = threading.Event()
        self.marker = marker
        self.n_behind = 0
        self._t = threading.Thread(target=self._run, args=(proc,), daemon=True)
        self._t.start()

    def _run(self, proc: subprocess.Popen[str]) -> None:
        assert proc.stdout is not None
        for line in proc.stdout:
            self.lines.append(line.rstrip())
            del self.lines[:-400]
            self.n_behind += "consumer behind" in line
            if self.marker in line:
                self.ready.set()


def start_emulator(faults: list[str]) -> tuple[subprocess.Popen[str], str]:
    emu = subprocess.Popen(
        [*DETECT, "emulate", "emulate.transport=tcp", *faults],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    assert emu.stdout is not None
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        line = emu.stdout.readline()
        m = re.search(r"(socket://\S+)", line)
        if m:
            threading.Thread(target=emu.stdout.read, daemon=True).start()  # keep the pipe drained
            return emu, m.group(1)
        if not line and emu.poll() is not None:
            break
    emu.kill()
    raise SystemExit("bench_sensor_head: the emulator did not start")


def run_measured(args: list[str], seconds: float, out_dir: Path) -> Measured:
    """Start ``detect run``, measure ``seconds`` once every sensor is OK, stop it (SIGINT)."""
    fixed = ["run.display=false", "run.duration_s=null", f"run.out_dir={out_dir}"]
    proc = subprocess.Popen(
        [*DETECT, "run", *args, *fixed],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    lines = Lines(proc, "SENSOR emi ")
    m = Measured()
    try:
        if not lines.ready.wait(180):
            raise SystemExit("bench_sensor_head: no sensor came up:\n" + "\n".join(lines.lines))
        c0, m0, w0 = cpu_s(proc.pid), main_thread_cpu_s(proc.pid), time.perf_counter()
        m.rss_start_mib = m.rss_max_mib = rss_mib(proc.pid)
        next_mark = 60.0
        while (el := time.perf_counter() - w0) < seconds:
            if proc.poll() is not None:
                tail = "\n".join(lines.lines[-20:])
                raise SystemExit(f"bench_sensor_head: detect run ended early:\n{tail}")
            time.sleep(min(1.0, max(seconds - el, 0.01)))
            rss = rss_mib(proc.pid)
            m.rss_max_mib = max(m.rss_max_mib, rss)
            if el >= next_mark:
                m.rss_marks.append((el, rss))
                next_mark += 60.0
        wall_s = time.perf_counter() - w0
        m.cpu_pct = 100 * (cpu_s(proc.pid) - c0) / wall_s
        m.main_pct = 100 * (main_thread_cpu_s(proc.pid) - m0) / wall_s
        m.span_s = time.perf_counter() - w0
        m.rss_end_mib = rss_mib(proc.pid)
        proc.send_signal(signal.SIGINT)
        proc.wait(120)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    time.sleep(0.2)
    m.tail = list(lines.lines)
    m.n_behind = lines.n_behind
    return m


def case(
    name: str, seconds: float, tmp: Path, faults: list[str] | None, head_args: list[str]
) -> Measured:
    out = tmp / f"{name}-{time.monotonic_ns()}"
    if faults is None:
        return run_measured(["source=sim"], seconds, out)
    emu, url = start_emulator(faults)
    try:
        head = ["source=sensor_head", f"source.url={url}", *head_args]
        return run_measured(head, seconds, out)
    finally:
        emu.terminate()
        try:
            emu.wait(10)
        except subprocess.TimeoutExpired:
            emu.kill()


def report(name: str, m: Measured) -> None:
    marks = ", ".join(f"{t / 60:.0f} min {r:.0f}" for t, r in m.rss_marks)
    print(
        f"{name:<22} CPU {m.cpu_pct:5.1f} % of one core over {m.span_s:.0f} s "
        f"(main thread {m.main_pct:4.1f} %, other threads {m.cpu_pct - m.main_pct:4.1f} %);  "
        f"RSS start {m.rss_start_mib:.0f} MiB, end {m.rss_end_mib:.0f} MiB, "
        f"max {m.rss_max_mib:.0f} MiB" + (f"  [{marks}]" if marks else ""),
        flush=True,
    )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seconds", type=float, default=30.0, help="measured span of the clean cases")
    ap.add_argument("--repeat", type=int, default=1, help="clean cases, alternating")
    ap.add_argument(
        "--faulted-s", type=float, default=60.0, help="measured span, faulted case (0: skip)"
    )
    ap.add_argument("--only", choices=("sim", "clean", "faulted"), default=None)
    ap.add_argument("--queue-size", type=int, default=8, help="reader queue, faulted case")
    ap.add_argument(
        "--head-arg",
        action="append",
        default=[],
        help="extra override for the sensor_head runs (e.g. +source.read_interval_s=0)",
    )
    a = ap.parse_args()
    print(f"load average {os.getloadavg()[0]:.2f} on {os.cpu_count()} cores", flush=True)
    with tempfile.TemporaryDirectory() as tmp_s:
        tmp = Path(tmp_s)
        for _ in range(a.repeat):
            if a.only in (None, "sim"):
                report("source=sim", case("sim", a.seconds, tmp, None, []))
            if a.only in (None, "clean"):
                report("source=sensor_head", case("head", a.seconds, tmp, [], a.head_arg))
        if a.only in (None, "faulted") and a.faulted_s > 0:
            m = case(
                "faulted",
                a.faulted_s,
                tmp,
                EXTREME,
                [f"source.queue_size={a.queue_size}", *a.head_arg],
            )
            report("sensor_head, faulted", m)
            faults = " ".join(f.removeprefix("emulate.faults.") for f in EXTREME)
            print(f"  emulator faults: {faults}")
            for line in m.tail:
                if line.startswith("link "):
                    print("  " + line)
            print(f"  'consumer behind' log lines over the whole run: {m.n_behind}")


if __name__ == "__main__":
    main()
