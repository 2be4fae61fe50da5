"""``detect plot FILE [--out PNG]``: the processed B-scan of any readable file, no model.

The file is read as ``scan`` reads it (:func:`detect.engine.items.file_items`) and run
through the DSP chains of the config (``cfg.dsp``), so the picture is what the model would
see, over the whole record (the model's ``time_axis`` crop is left out). Where that chain
does not fit the instrument (a step refuses the file, or the antenna's centre frequency lies
outside an absolute band-pass), the GPR goes through a plain dewow + gain chain instead, and
the title says so. A file with no trace positions nor
spacing is drawn against the trace number.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from detect.app.common import command
from detect.blocks import GprBlock, MdBlock
from detect.dsp.base import DspError
from detect.dsp.chain import build_chain
from detect.engine.items import file_items
from detect.errors import EXIT_FAILURE, EXIT_USAGE, InputError, TaskError
from detect.sinks.plot import (
    C0_M_NS,
    PANEL_M,
    Radargram,
    concat,
    file_velocity,
    instrument_of,
    save_radargram,
    truth_for,
)

log = logging.getLogger(__name__)


def fallback_steps(antenna_hz: float | None, window_ns: float) -> list[dict[str, Any]]:
    """Plain dewow (three antenna periods, or a tenth of the record) + t^1 spreading gain
    from one antenna period."""
    dewow_ns = 3e9 / antenna_hz if antenna_hz else window_ns / 10.0
    return [
        {"step": "dewow", "window_ns": float(dewow_ns)},
        {"step": "gain", "power": 1.0, "t_ref_ns": float(dewow_ns / 3.0)},
    ]


def _band_misfit(steps: Sequence[Mapping[str, Any]], antenna_hz: float | None) -> str | None:
    """Why the chain's band-pass does not fit this antenna (or cannot be checked), or None."""
    for s in steps:
        if s.get("step") == "bandpass" and s.get("low_rel") is not None:
            continue  # set from the antenna's (or the measured) centre frequency: it fits
        if s.get("step") == "bandpass" and not antenna_hz:
            return "antenna frequency unknown: the chain's band-pass cannot be checked"
        if s.get("step") == "bandpass" and antenna_hz:
            lo, hi = float(s.get("low_hz") or 0.0), float(s.get("high_hz") or math.inf)
            if not lo <= antenna_hz <= hi:
                return (
                    f"{antenna_hz / 1e6:.0f} MHz antenna outside the chain's "
                    f"{lo / 1e6:.0f}-{hi / 1e6:.0f} MHz band-pass"
                )
    return None


def _step_names(steps: Sequence[Mapping[str, Any]]) -> list[str]:
    return [str(s.get("step")) for s in steps]


def process(
    items: Sequence[Any], cfg: Any, plain: str | None = None
) -> tuple[GprBlock | None, MdBlock | None, list[str], str]:
    """(processed GPR, processed EMI, step names, fallback note or ""); ``plain``: a reason
    to use the plain GPR chain whatever the antenna."""
    from omegaconf import OmegaConf

    gpr_in = [i for i in items if isinstance(i, GprBlock)]
    emi_in = [i for i in items if isinstance(i, MdBlock)]
    dsp = OmegaConf.to_container(cfg.dsp, resolve=True) if cfg.get("dsp") else {}
    assert isinstance(dsp, dict)
    gpr_steps, emi_steps = list(dsp.get("gpr") or []), list(dsp.get("emi") or [])
    note = ""
    gpr = None
    if gpr_in:
        head = gpr_in[0].header
        why = plain or _band_misfit(gpr_steps, head.antenna_hz)
        # the whole record: the model's time axis (time_axis) would crop it to its window
        gpr_steps = [st for st in gpr_steps if st.get("step") != "time_axis"]
        if why is None:
            try:
                chain = build_chain(gpr_steps, "gpr")
                gpr = concat([chain.process(b) for b in gpr_in], GprBlock)
            except DspError as exc:
                why = str(exc).splitlines()[0]
        if why is not None:
            window_ns = gpr_in[0].n_samples * head.dt_ns
            gpr_steps = fallback_steps(head.antenna_hz, window_ns)
            chain = build_chain(gpr_steps, "gpr")
            gpr = concat([chain.process(b) for b in gpr_in], GprBlock)
            note = f"config dsp chain not used ({why}): plain dewow + gain"
            log.warning("%s", note)
    emi = None
    if emi_in:
        try:
            chain = build_chain(emi_steps, "emi")
            emi = concat([chain.process(b) for b in emi_in], MdBlock)
        except DspError as exc:
            log.warning("EMI drawn unprocessed: %s", str(exc).splitlines()[0])
            emi, emi_steps = concat(emi_in, MdBlock), []
    names = [f"GPR: {', '.join(_step_names(gpr_steps)) or 'none'}"] if gpr_in else []
    if emi_in:
        names.append(f"EMI: {', '.join(_step_names(emi_steps)) or 'none'}")
    return gpr, emi, names, note


def velocity_of(path: Path, info: Mapping[str, Any]) -> tuple[float, str, float]:
    """(velocity m/ns, where it comes from, two-way time of the ground surface in ns):
    a simulated lane's soil (surface below the head's mean height), else the file's."""
    soil = info.get("soil")
    if soil and info.get("source") == "sim":
        from detect.sim.settings import SimSettings
        from detect.sim.soil import SOILS

        if soil in SOILS:
            head = SimSettings().head
            h_m = (head.height_min_m + head.height_max_m) / 2
            return SOILS[soil].velocity_m_ns, f"simulated soil {soil}", 2 * h_m / C0_M_NS
    return (*file_velocity(path, info), 0.0)


@command
def plot_task(cfg: Any) -> int:
    """``detect plot FILE [--out PNG]``."""
    path_s = cfg.input.get("path")
    if not path_s:
        raise TaskError("plot needs a FILE", EXIT_USAGE)
    path = Path(str(path_s))
    out = Path(str(cfg.output.get("path") or f"{path.stem}_radargram.png"))
    if out.suffix.lower() != ".png":
        raise TaskError(f"{out}: plot writes a PNG (--out NAME.png)", EXIT_USAGE)
    rg = radargram_for(cfg, path)
    try:
        written = save_radargram(out, rg)
    except OSError as exc:
        raise TaskError(f"{out}: cannot write: {exc.strerror or exc}", EXIT_FAILURE) from exc
    for p in written:
        print(p)
    return 0


def radargram_for(cfg: Any, path: Path) -> Radargram:
    """The :class:`Radargram` of ``path`` processed as the config says (see module doc)."""
    fmt = cfg.input.get("format")
    spacing = cfg.input.get("trace_spacing_m")
    channel = int(cfg.input.get("channel") or 0)
    x_label = "along-track position (m)"
    panel, plain = PANEL_M, None
    try:
        walk = cfg.input.get("walking_speed_m_s")
        items, info, _ = file_items(path, fmt, spacing, channel=channel, walking_speed_m_s=walk)
    except InputError:
        if spacing:
            raise
        # no positions nor spacing: draw against the trace number (an unreadable file
        # fails the same way again and its own error goes out)
        items, info, _ = file_items(path, fmt, 1.0, channel=channel)
        x_label = "trace number (no trace positions or spacing in the file)"
        panel, plain = 1000.0, "no trace positions"
    gpr, emi, steps, note = process(items, cfg, plain)
    if gpr is None and emi is None:
        raise TaskError(f"{path}: holds no GPR or EMI data to plot", EXIT_USAGE)
    v, v_note, surface_ns = velocity_of(path, info)
    if gpr is not None and not info.get("antenna_mhz") and gpr.header.antenna_hz:
        info = {**info, "antenna_mhz": gpr.header.antenna_hz / 1e6}
    return Radargram(
        gpr=gpr,
        emi=emi,
        source=path.name,
        instrument=instrument_of(info),
        steps=steps,
        velocity_m_ns=v,
        velocity_note=v_note,
        surface_ns=surface_ns,
        truth=truth_for(path, info),
        notes=[note] if note else [],
        x_label=x_label,
        panel_m=panel,
    )
