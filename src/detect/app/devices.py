"""``detect devices``: the serial ports and the driver that matches each."""

from __future__ import annotations

import json
from dataclasses import asdict
from typing import Any

from detect.app.common import command
from detect.sources.discovery import (
    format_table,
    list_ports,
)


@command
def devices_task(cfg: Any) -> int:
    as_json = bool(cfg.get("devices", {}).get("json", False)) if hasattr(cfg, "get") else False
    infos = list_ports()
    if as_json:
        print(json.dumps([{**asdict(i), "usb_id": i.usb_id} for i in infos]))
    else:
        print(format_table(infos))
    return 0
