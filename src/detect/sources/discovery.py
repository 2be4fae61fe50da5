"""``detect devices``: serial ports with USB VID:PID, description and the matching driver.

A USB-serial bridge chip says little about the instrument behind it, so a match is
a suggestion (``likely``) unless the VID:PID belongs to one device family (u-blox
receivers). Works with zero ports.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

#: (vid, pid or None for any) -> (driver kind, why). Exact pid entries win over vid-only.
KNOWN_USB: dict[tuple[int, int | None], tuple[str, str]] = {
    (0x1546, 0x01A7): ("gps_ubx", "u-blox 7 GNSS receiver"),
    (0x1546, 0x01A8): ("gps_ubx", "u-blox 8 GNSS receiver"),
    (0x1546, 0x01A9): ("gps_ubx", "u-blox GNSS receiver (F9/M9)"),
    (0x1546, None): ("gps_ubx", "u-blox device"),
    (0x067B, 0x2303): ("gps_nmea", "Prolific PL2303 (common in NMEA GPS pucks)"),
    (0x10C4, 0xEA60): ("gps_nmea", "Silicon Labs CP210x (common in GNSS boards)"),
    (0x0403, 0x6001): ("sensor_head", "FTDI FT232R USB-serial (sensor-head link)"),
    (0x0403, 0x6014): ("sensor_head", "FTDI FT232H high-speed USB-serial (sensor-head link)"),
    (0x0403, 0x6015): ("sensor_head", "FTDI FT-X USB-serial (sensor-head link)"),
    (0x2341, None): ("ascii_emi", "Arduino (open-source PI detector / magnetometer sketches)"),
    (0x2A03, None): ("ascii_emi", "Arduino.org board"),
    (0x1A86, 0x7523): ("ascii_emi", "WCH CH340 USB-serial (Arduino clones)"),
    (0x16C0, 0x0483): ("ascii_emi", "Teensy USB serial"),
    (0x2E8A, 0x000A): ("ascii_emi", "Raspberry Pi Pico USB serial"),
}


@dataclass(frozen=True)
class PortInfo:
    device: str
    vid: int | None
    pid: int | None
    description: str
    serial_number: str | None
    driver: str | None
    why: str

    @property
    def usb_id(self) -> str:
        if self.vid is None or self.pid is None:
            return "-"
        return f"{self.vid:04x}:{self.pid:04x}"


def match_driver(vid: int | None, pid: int | None) -> tuple[str | None, str]:
    if vid is None:
        return None, "no USB id"
    hit = KNOWN_USB.get((vid, pid)) or KNOWN_USB.get((vid, None))
    return hit if hit else (None, "unknown USB id")


def describe(ports: Iterable[Any]) -> list[PortInfo]:
    out: list[PortInfo] = []
    for p in ports:
        vid, pid = getattr(p, "vid", None), getattr(p, "pid", None)
        driver, why = match_driver(vid, pid)
        out.append(
            PortInfo(
                device=str(p.device),
                vid=vid,
                pid=pid,
                description=str(getattr(p, "description", "") or "n/a"),
                serial_number=getattr(p, "serial_number", None),
                driver=driver,
                why=why,
            )
        )
    return sorted(out, key=lambda i: i.device)


def list_ports() -> list[PortInfo]:
    from serial.tools import list_ports as lp

    return describe(lp.comports())


def format_table(infos: list[PortInfo]) -> str:
    if not infos:
        return "no serial ports found (emulators: `detect emulate` prints a device path)"
    rows = [("PORT", "USB ID", "DRIVER", "DESCRIPTION")]
    rows += [(i.device, i.usb_id, i.driver or "-", f"{i.description} ({i.why})") for i in infos]
    widths = [max(len(r[c]) for r in rows) for c in range(3)]
    return "\n".join("  ".join(r[c].ljust(widths[c]) for c in range(3)) + "  " + r[3] for r in rows)
