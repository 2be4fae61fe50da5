"""The rich operator view: FAULT above everything, alarms and coverage shown."""

from __future__ import annotations

import io

from rich.console import Console

from detect.blocks import Alarm
from detect.sinks.display import RichDisplay, Status


def test_fault_banner_comes_first_and_alarms_and_coverage_are_shown() -> None:
    buf = io.StringIO()
    d = RichDisplay(bell=False, console=Console(file=buf, width=120, force_terminal=False))
    alarm = Alarm("A-0007", 2.34, 0.87, "at_mine", {"gpr": 0.8}, 0.12, 5.0)
    st = Status(
        elapsed_s=12.0,
        head_position_m=3.1,
        speed_m_s=0.5,
        p_mine=0.2,
        sensors=[
            {"sensor": "gpr", "state": "FAULT", "reason": "no data for 0.50 s", "rate_hz": 0.0},
            {"sensor": "emi", "state": "OK", "reason": "", "rate_hz": 1000.0},
            {"sensor": "gps", "state": "FAULT", "reason": "no data yet", "rate_hz": 0.0},
        ],
        needed=("gpr", "emi"),
        alarms=[alarm],
        n_alarms=1,
        distance_m=3.1,
        not_covered_m=0.4,
        not_covered=[(2.7, 3.1)],
    )
    d.update(st)
    d.close()
    text = buf.getvalue()
    last = text[text.rfind("SENSOR FAULT") :]
    assert "SENSOR FAULT: gpr (no data for 0.50 s) " in last  # GPS is not in the banner
    assert "GPS FAULT (no data yet): alarms keep along-track positions" in last
    assert "NOT COVERED" in last
    assert last.index("SENSOR FAULT") < last.index("0007")
    assert "at_mine" in last and "0.87" in last and "12 cm" in last
    assert "NOT COVERED 0.40 m" in last and "2.70-3.10" in last
