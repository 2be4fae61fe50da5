"""Why ground was not covered: the ``reason`` of each not-covered stretch of the survey package.

A run's coverage segments (``alarms.json`` ``coverage``, or a session's ``/coverage`` rows)
say *which* needed sensors did not cover a stretch (``missing``); its health events say what
state each sensor was in, and where the head was (``position_m``: the sensor's ground position
when the state changed). From both, per missing sensor, best first:

- ``gpr FAULT: <its health reason>`` (``disconnected``, ``no data for 0.52 s``, ``processing:
  ...``, a radar outside the model's envelope) or ``emi DEGRADED: <reason>`` (link errors),
  where that sensor was in that state over (part of) the stretch;
- ``gpr not scored: lane start`` / ``lane end``: a stretch at an end of the ground passed in
  its position epoch (a sensor mounted ahead or behind, the windows' half width at the ends);
  after a state above when both hold (``gpr FAULT: disconnected, not scored: lane end``);
- ``gpr not scored: gap in its data``: neither explains it (a stall shorter than the FAULT
  timeout, a lossy link, frames missing from a simulation faster than real time, a recording
  replayed without health).

Sensors with the same reason share it (``emi,gpr not scored: lane end``); different ones are
joined with ``; ``. The live package and ``detect export-gis`` of its session call the same
functions on the same facts, so they write the same polygons and reasons.

A health event's position epoch is the number of epochs begun at or before its time
(``epoch_starts_s``, same clock as the events; a live run and its session).
"""

from __future__ import annotations

import bisect
import math
from collections.abc import Iterable, Mapping, Sequence
from itertools import pairwise
from typing import Any

from detect.coverage import merge

#: what a session records as the reason of each coverage row (nothing more specific known)
GENERIC = ("", "not covered")
#: the states whose stretch explains ground not covered
_BAD = ("FAULT", "DEGRADED", "STARTING")


def health_records(
    events: Iterable[Any], epoch_starts_s: Sequence[float] = ()
) -> list[dict[str, Any]]:
    """Health events (:class:`detect.blocks.HealthEvent`) as plain records with their
    position epoch: ``time_s``, ``sensor``, ``state`` (name), ``reason``, ``position_m``
    (None where unknown), ``epoch``."""
    starts = sorted(float(t) for t in epoch_starts_s)
    out = []
    for ev in events:
        t, pos = float(ev.host_time_s), float(ev.position_m)
        state = getattr(ev.state, "name", str(ev.state))
        out.append(
            {
                "time_s": t,
                "sensor": str(ev.sensor),
                "state": state,
                "reason": str(ev.reason or ""),
                "position_m": round(pos, 6) if math.isfinite(pos) else None,
                "epoch": bisect.bisect_right(starts, t) if math.isfinite(t) else 0,
            }
        )
    return out


def _spans(health: Sequence[Mapping[str, Any]]) -> dict[tuple[str, int], list[tuple]]:
    """Per (sensor, epoch): (lo_m, hi_m, state, reason) for each non-OK state, from the
    event's position to the next event's (to the end of the epoch when none follows; an
    unknown position reaches back to the epoch's start, or on to its end)."""
    by: dict[tuple[str, int], list[Mapping[str, Any]]] = {}
    for ev in sorted(health, key=lambda e: float(e.get("time_s") or 0.0)):
        by.setdefault((str(ev["sensor"]), int(ev.get("epoch") or 0)), []).append(ev)
    out: dict[tuple[str, int], list[tuple]] = {}
    for key, evs in by.items():
        for i, ev in enumerate(evs):
            if ev["state"] not in _BAD:
                continue
            p0 = ev.get("position_m")
            p1 = evs[i + 1].get("position_m") if i + 1 < len(evs) else None
            a = -math.inf if p0 is None else float(p0)
            b = math.inf if p1 is None else float(p1)
            lo, hi = (a, b) if a <= b else (b, a)
            out.setdefault(key, []).append((lo, hi, ev["state"], ev.get("reason") or ""))
    return out


def _ends(coverage: Sequence[Mapping[str, Any]]) -> dict[int, tuple[float, float]]:
    """Per epoch, where its not-covered stretch at each end of the passed ground ends
    (start run: ``[min, first_end]``; end run: ``[last_start, max]``)."""
    out: dict[int, tuple[float, float]] = {}
    for ep in {int(s.get("epoch") or 0) for s in coverage}:
        segs = sorted(
            (s for s in coverage if int(s.get("epoch") or 0) == ep),
            key=lambda s: (float(s["start_m"]), float(s["end_m"])),
        )
        lo = min(float(s["start_m"]) for s in segs)
        hi = max(float(s["end_m"]) for s in segs)
        first_end, last_start = lo, hi
        for s in segs:  # the run of not-covered ground that starts at the lowest point
            if s["status"] != "not_covered" or float(s["start_m"]) > first_end + 1e-9:
                break
            first_end = max(first_end, float(s["end_m"]))
        for s in sorted(segs, key=lambda s: -float(s["end_m"])):  # ...and ends at the highest
            if s["status"] != "not_covered" or float(s["end_m"]) < last_start - 1e-9:
                break
            last_start = min(last_start, float(s["start_m"]))
        out[ep] = (first_end, last_start)
    return out


def _why(sensor: str, a: float, b: float, ep: int, spans: Mapping, ends: Mapping) -> str:
    hits = [
        (state, reason)
        for lo, hi, state, reason in spans.get((sensor, ep), [])
        if (lo < b and hi > a) or (lo == hi and a <= lo <= b)
    ]
    parts = list(dict.fromkeys(f"{st}: {r}" if r else st for st, r in hits))
    first_end, last_start = ends.get(ep, (-math.inf, math.inf))
    at = ["lane start"] if b <= first_end + 1e-9 else []
    at += ["lane end"] if a >= last_start - 1e-9 else []
    if at:
        parts.append("not scored: " + " and ".join(at))
    return ", ".join(parts) or "not scored: gap in its data"


def with_reasons(
    coverage: Sequence[Mapping[str, Any]], health: Sequence[Mapping[str, Any]] | None
) -> list[dict[str, Any]]:
    """``coverage`` with a specific ``reason`` on every not-covered segment that names its
    missing sensors and has no specific reason yet (``health``: :func:`health_records`)."""
    spans = _spans(list(health or []))
    ends = _ends(coverage) if coverage else {}
    out = []
    for seg in coverage:
        seg = dict(seg)
        missing = list(seg.get("missing") or [])
        if seg.get("status") == "not_covered" and missing and seg.get("reason") in (None, *GENERIC):
            a, b, ep = float(seg["start_m"]), float(seg["end_m"]), int(seg.get("epoch") or 0)
            by_why: dict[str, list[str]] = {}
            for s in missing:
                by_why.setdefault(_why(s, a, b, ep, spans, ends), []).append(s)
            seg["reason"] = "; ".join(f"{','.join(ss)} {why}" for why, ss in by_why.items())
        out.append(seg)
    return out


def segments_from_rows(rows: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """A session's not-covered rows (one per sensor and stretch) as the live run's segments:
    per epoch, consecutive stretches each with the sorted sensors missing there, touching
    stretches with the same sensors joined (so ground two sensors missed is one segment
    ``missing = [emi, gpr]``, as the live run writes it, not one overlapping row per sensor).
    A row's specific (not generic) reason is kept on the stretches it lies over."""
    out: list[dict[str, Any]] = []
    for ep in sorted({int(r.get("epoch") or 0) for r in rows}):
        mine = [r for r in rows if int(r.get("epoch") or 0) == ep and r["end_m"] > r["start_m"]]
        per: dict[str, list[tuple[float, float]]] = {}
        for r in mine:
            per.setdefault(str(r["sensor"]), []).append((float(r["start_m"]), float(r["end_m"])))
        per = {s: merge(ivs) for s, ivs in per.items()}
        cuts = sorted({x for ivs in per.values() for iv in ivs for x in iv})
        for a, b in pairwise(cuts):
            mid = 0.5 * (a + b)
            missing = sorted(s for s, ivs in per.items() if any(p <= mid <= q for p, q in ivs))
            if not missing:
                continue
            why = "; ".join(
                dict.fromkeys(
                    str(r.get("reason"))
                    for r in mine
                    if r.get("reason") not in (None, *GENERIC) and r["start_m"] <= mid <= r["end_m"]
                )
            )
            last = out[-1] if out else None
            if (
                last is not None
                and last["epoch"] == ep
                and last["missing"] == missing
                and last.get("reason", "") == why
                and math.isclose(last["end_m"], a)
            ):
                last["end_m"] = b
                continue
            seg = {"start_m": a, "end_m": b, "status": "not_covered", "missing": missing}
            out.append({**seg, **({"reason": why} if why else {}), "epoch": ep})
    return out
