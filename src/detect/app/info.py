"""``detect info FILE``: what a recorded file holds."""

from __future__ import annotations

import json

from omegaconf import DictConfig

from detect.app.common import command
from detect.io.info import (
    _JSON_ONLY,
    _json_safe,
    _sensor_session,
    describe,
    load_input,
)


@command
def info_task(cfg: DictConfig) -> int:
    path = cfg.input.get("path")
    sensor_only = _sensor_session(str(path)) if path else None
    if sensor_only is not None:
        if cfg.get("info") is not None and cfg.info.get("json"):
            print(json.dumps(_json_safe(sensor_only)))
        else:
            shown = {k: v for k, v in sensor_only.items() if k not in _JSON_ONLY}
            print("\n".join(f"{k.replace('_', ' '):<17}{v}" for k, v in shown.items()))
            print("no GPR stream in this session (metal detector / GPS only)")
        return 0
    g = load_input(cfg, headers_only=True)  # O(1) memory on a multi-GB file
    if cfg.get("info") is not None and cfg.info.get("json"):
        out = g.info()
        if "session" in g.meta:
            out["session"] = g.meta["session"]
        print(json.dumps(_json_safe(out)))
    else:
        print(describe(g))
    return 0
