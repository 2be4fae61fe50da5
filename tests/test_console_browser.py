"""The console in a real headless Chromium (Debian's chromium + chromium-driver, driven by
Selenium; nothing downloads a browser) during a simulated run: the waterfall advances, an
alarm shows within 1 s of the pipeline declaring it, a GPR unplug turns its tile FAULT and
silences its tone within 1 s of its last data (the metal tone plays on; the radar tone comes
back when it is plugged in again), and an acknowledged alarm's outcome lands in the run's files
and in the session recording (``/outcomes``).

The docs' screenshot (docs/img/console.png, with suspects and the CUE banner) is
``scripts/console_screenshot.py``."""

from __future__ import annotations

import json
import shutil
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

CHROMIUM, DRIVER = "/usr/bin/chromium", "/usr/bin/chromedriver"
if not (Path(CHROMIUM).exists() and Path(DRIVER).exists()):
    pytest.skip(
        "no Debian chromium + chromium-driver (apt-get install chromium chromium-driver; "
        "scripts/test.sh does it where apt-get works)",
        allow_module_level=True,
    )
pytest.importorskip("starlette", reason="console extra not installed (pip install .[console])")
webdriver = pytest.importorskip("selenium.webdriver", reason="selenium not installed (.[dev])")

from console_harness import ConsoleRun  # noqa: E402


def _until(what: str, pred: Callable[[], Any], timeout_s: float = 30.0, every_s: float = 0.02
           ) -> Any:  # fmt: skip
    t0 = time.monotonic()
    while time.monotonic() - t0 < timeout_s:
        got = pred()
        if got:
            return got
        time.sleep(every_s)
    raise AssertionError(f"{what}: not within {timeout_s} s")


def _alarm_ids(path: Path) -> list[str]:
    if not path.exists():
        return []
    return [json.loads(x)["id"] for x in path.read_text().splitlines() if x.strip()]


@pytest.fixture
def browser() -> Any:
    opts = webdriver.ChromeOptions()
    opts.binary_location = CHROMIUM
    for arg in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                "--window-size=1366,768", "--autoplay-policy=no-user-gesture-required",
                "--force-device-scale-factor=1"):  # fmt: skip
        opts.add_argument(arg)
    service = webdriver.ChromeService(executable_path=DRIVER)
    drv = webdriver.Chrome(options=opts, service=service)
    drv.execute_cdp_cmd(  # the viewport itself 1366x768, whatever the window frame takes
        "Emulation.setDeviceMetricsOverride",
        {"width": 1366, "height": 768, "deviceScaleFactor": 1, "mobile": False},
    )
    try:
        yield drv
    finally:
        drv.quit()


def test_console_live_in_chromium(tmp_path: Path, browser: Any) -> None:
    out = tmp_path / "run"
    js = browser.execute_script
    # the simulated GPR cable comes out 10 s after the start and goes back in 5 s later
    with ConsoleRun(out, 20.0, "source.fault_gpr_after_s=10", "source.fault_gpr_for_s=5") as run:
        browser.get(run.url)
        browser.find_element("id", "sound-btn").click()  # Web Audio needs a user gesture
        cols = lambda: int(js("return +document.getElementById('waterfall').dataset.columns"))  # noqa: E731
        c0 = _until("radargram columns", cols)
        _until("the waterfall advancing", lambda: cols() > c0 + 10, 5.0)
        assert js("return document.getElementById('fault-banner').hidden")  # healthy start
        gain = lambda tone: js(f"return window.__detectAudio.gain.{tone}")  # noqa: E731
        _until("the radar tone playing", lambda: gain("radar") > 0, 5.0)
        assert gain("metal") > 0

        jsonl = out / "alarms.jsonl"
        n0 = len(_alarm_ids(jsonl))
        new = _until("a new alarm declared", lambda: _alarm_ids(jsonl)[n0:], 12.0, 0.01)
        t_declared = time.monotonic()
        shown = f"return !!document.getElementById('alarm-{new[0]}')"
        _until("the alarm on the console", lambda: js(shown), 5.0)
        assert time.monotonic() - t_declared <= 1.0

        browser.find_element("css selector", f"#alarm-{new[0]} button[data-outcome='mine']").click()
        outcome = out / "outcomes.jsonl"
        saved = lambda: outcome.exists() and outcome.read_text()  # noqa: E731
        _until("the outcome in the run's files", saved, 5.0)
        rec = json.loads(outcome.read_text().splitlines()[0])
        assert (rec["id"], rec["outcome"]) == (new[0], "mine")

        tile = "document.getElementById('tile-gpr')"
        _until("GPR tile FAULT", lambda: js(f"return {tile}.dataset.state") == "FAULT", 15.0)
        gap_ms = js(f"return {tile}.dataset.faultAt - window.consoleState.lastGprAt")
        assert 0 < gap_ms <= 1000.0  # last radar data to the red tile
        banner = "return !document.getElementById('fault-banner').hidden"
        _until("the red SENSOR FAULT banner", lambda: js(banner), 1.0)
        # no live-sounding radar from an unplugged sensor: its tone is silent within 1 s of
        # its last data (page clock), and stays silent; the working metal detector's plays on
        _until("the radar tone silent", lambda: gain("radar") == 0, 1.0)
        off_ms = js("return window.__detectAudio.changedAt.radar - window.consoleState.lastGprAt")
        assert 0 < off_ms <= 1000.0
        time.sleep(0.5)
        assert gain("radar") == 0 and gain("metal") > 0
        # plugged in again: OK, and the radar tone follows its levels again
        _until("GPR tile OK again", lambda: js(f"return {tile}.dataset.state") == "OK", 8.0)
        _until("the radar tone back", lambda: gain("radar") > 0, 2.0)
    assert run.rc["rc"] != 0  # ground passed with the GPR out is not covered
    from detect.io.session import SessionReader

    with SessionReader(out / "session.h5") as r:  # the outcome is in the session too
        assert [(o["id"], o["outcome"]) for o in r.outcomes()] == [(new[0], "mine")]


def test_chromium_binary_is_debian_s_not_a_download() -> None:
    assert shutil.which("chromium") in (CHROMIUM, None) or Path(CHROMIUM).exists()
