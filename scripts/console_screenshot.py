"""The console screenshot of the README and docs (docs/img/console.png, 1366x768).

A simulated ``detect run`` (real time, shipped model) with the console, opened in Debian's
headless Chromium (Selenium, as ``tests/test_console_browser.py``). The picture is taken once
the alarm list holds at least one alarm and one suspect, an alarm has been acknowledged
("Mine"), and the cyan CUE banner is up, so it shows each of them.

    .venv/bin/python scripts/console_screenshot.py [--out docs/img/console.png] [--seed 3]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))

from console_harness import ConsoleRun  # noqa: E402

CHROMIUM, DRIVER = "/usr/bin/chromium", "/usr/bin/chromedriver"


def _browser() -> Any:
    from selenium import webdriver

    opts = webdriver.ChromeOptions()
    opts.binary_location = CHROMIUM
    for arg in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                "--window-size=1366,768", "--force-device-scale-factor=1"):  # fmt: skip
        opts.add_argument(arg)
    drv = webdriver.Chrome(options=opts, service=webdriver.ChromeService(executable_path=DRIVER))
    drv.execute_cdp_cmd(
        "Emulation.setDeviceMetricsOverride",
        {"width": 1366, "height": 768, "deviceScaleFactor": 1, "mobile": False},
    )
    return drv


def _until(what: str, pred: Any, timeout_s: float) -> Any:
    t0 = time.monotonic()
    while time.monotonic() - t0 < timeout_s:
        got = pred()
        if got:
            return got
        time.sleep(0.05)
    raise SystemExit(f"console_screenshot: {what} not within {timeout_s:g} s")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, default=ROOT / "docs" / "img" / "console.png")
    ap.add_argument("--seed", type=int, default=3, help="simulated lane seed")
    ap.add_argument("--duration-s", type=float, default=60.0)
    args = ap.parse_args()
    if not (Path(CHROMIUM).exists() and Path(DRIVER).exists()):
        print("console_screenshot: needs Debian's chromium and chromium-driver", file=sys.stderr)
        return 2
    with tempfile.TemporaryDirectory() as tmp:
        drv = _browser()
        try:
            with ConsoleRun(Path(tmp) / "run", args.duration_s, f"source.seed={args.seed}") as run:
                drv.get(run.url)
                js = drv.execute_script
                rows = "return document.querySelectorAll('#alarms li[data-tier=\"%s\"]').length"
                both = lambda: js(rows % "alarm") and js(rows % "suspect")  # noqa: E731
                _until("an alarm and a suspect", both, args.duration_s)
                first = drv.find_element("css selector", "#alarms li[data-tier='alarm']")
                first.find_element("css selector", "button[data-outcome='mine']").click()
                cue = "return !document.getElementById('cue-line').hidden"
                _until("the CUE banner", lambda: js(cue), args.duration_s)
                time.sleep(0.3)  # let the canvases draw the same moment
                drv.save_screenshot(str(args.out))
                print(f"wrote {args.out}")
        finally:
            drv.quit()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
