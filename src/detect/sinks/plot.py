"""Radargrams worth reading: the one plotting module of ``scan.png``, ``detect plot``,
``evaluate``, the docs and the scripts.

A page shows, per panel of at most ``panel_m`` of track (so labels never overprint on a
long lane): the processed B-scan on a regular along-track grid with two-way time on the
left and depth on the right (from the velocity given, stated on the axis), a colour bar,
alarms with their confidence, truth outlines where known (top at the object's depth,
its size wide), the EMI decay gates labelled by gate time on a symmetric-log axis, and
the score profile. Ground reported not covered is hatched on every row, with a legend.
The title names the file, the instrument and the processing steps.

Figures are built with :class:`matplotlib.figure.Figure` (no pyplot state), so building
them is safe anywhere and tests can inspect the axes.
"""

from __future__ import annotations

import itertools
import logging
import math
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from detect.blocks import GprBlock, MdBlock

log = logging.getLogger(__name__)

C0_M_NS = 0.299792458
#: Depth axis velocity when nothing better is known: moist soil, eps_r ~ 9.
DEFAULT_VELOCITY_M_NS = 0.1
#: Longest stretch of track in one panel: at 12 in wide, 0.5 m is a confidence label.
PANEL_M = 12.0
PANELS_PER_PAGE = 3
_LABEL_ROWS = 4
_MAX_COLUMNS = 1600

CLASS_COLOURS = {
    "ap_mine": "tab:red",
    "at_mine": "darkred",
    "uxo": "tab:orange",
    "metal_clutter": "tab:blue",
    "nonmetal_clutter": "tab:green",
}


@dataclass
class Radargram:
    """What a radargram page shows. ``gpr``/``emi`` are processed, whole-profile blocks
    (either may be None); ``alarms``, ``truth`` and ``coverage`` are the dicts of
    ``alarms.json`` and the truth CSVs (``position_m``/``confidence``; ``x_m``/``depth_m``/
    ``size_m``/``class``/``kind``; ``start_m``/``end_m``/``status``/``missing``)."""

    gpr: GprBlock | None
    emi: MdBlock | None = None
    source: str = ""
    instrument: str = ""
    steps: Sequence[str] = ()
    velocity_m_ns: float = DEFAULT_VELOCITY_M_NS
    velocity_note: str = "assumed"
    #: Two-way time (ns after time zero) of the ground surface: depth 0 on the depth axis.
    surface_ns: float = 0.0
    alarms: Sequence[Mapping[str, Any]] = ()
    truth: Sequence[Mapping[str, Any]] = ()
    coverage: Sequence[Mapping[str, Any]] = ()
    track: Mapping[str, Any] | None = None
    notes: Sequence[str] = ()
    x_label: str = "along-track position (m)"
    #: EMI channels drawn (indices; None: all).
    emi_gates: Sequence[int] | None = None
    #: Longest stretch of the x axis in one panel (in the x axis's unit).
    panel_m: float = PANEL_M
    extra: dict[str, Any] = field(default_factory=dict)

    def depth_m(self, t_ns: Any) -> Any:
        return self.velocity_m_ns * (np.asarray(t_ns) - self.surface_ns) / 2.0

    def time_ns(self, depth_m: Any) -> Any:
        return 2.0 * np.asarray(depth_m) / self.velocity_m_ns + self.surface_ns


def concat(blocks: Sequence[Any], kind: type) -> Any:
    """One block of ``kind`` from the pieces of a profile (None when there are none);
    GPR pieces with another trace length than the first are left out."""
    parts: list[Any] = [b for b in blocks if isinstance(b, kind)]
    parts = [b for b in parts if b.n]
    if not parts:
        return None
    if kind is GprBlock:
        parts = [b for b in parts if b.n_samples == parts[0].n_samples]
    if len(parts) == 1:
        return parts[0]
    from dataclasses import replace

    return replace(
        parts[0],
        data=np.concatenate([b.data for b in parts]),
        seq=np.concatenate([b.seq for b in parts]),
        host_time_s=np.concatenate([b.host_time_s for b in parts]),
        position_m=np.concatenate([b.position_m for b in parts]),
    )


def velocity_from_eps(eps_r: float) -> float:
    return C0_M_NS / math.sqrt(eps_r)


def _extent_m(rg: Radargram) -> tuple[float, float]:
    xs: list[float] = []
    for blk in (rg.gpr, rg.emi):
        if blk is not None:
            p = np.asarray(blk.position_m, dtype=np.float64)
            p = p[np.isfinite(p)]
            if p.size:
                xs += [float(p.min()), float(p.max())]
    if not xs and rg.track:
        p = np.asarray(rg.track.get("position_m", []), dtype=np.float64)
        p = p[np.isfinite(p)]
        if p.size:
            xs += [float(p.min()), float(p.max())]
    if not xs:
        return 0.0, 1.0
    a, b = min(xs), max(xs)
    return (a, b) if b > a else (a - 0.5, a + 0.5)


def panel_ranges(x0: float, x1: float, panel_m: float = PANEL_M) -> list[tuple[float, float]]:
    """Equal panels of at most ``panel_m`` covering ``[x0, x1]``."""
    n = max(1, math.ceil((x1 - x0) / panel_m - 1e-9))
    edges = np.linspace(x0, x1, n + 1)
    return [(float(a), float(b)) for a, b in itertools.pairwise(edges)]


def _regrid(block: GprBlock, a: float, b: float) -> tuple[np.ndarray, float, float] | None:
    """The traces of ``[a, b]`` on a regular along-track grid (nearest trace; NaN columns
    where no trace lies within a few trace steps: a gap shows as a gap)."""
    pos = np.asarray(block.position_m, dtype=np.float64)
    ok = np.flatnonzero(np.isfinite(pos))
    if ok.size == 0:
        return None
    order = ok[np.argsort(pos[ok], kind="stable")]
    ps = pos[order]
    lo, hi = np.searchsorted(ps, [a, b])
    if hi <= lo:
        return None
    steps = np.diff(ps)
    steps = steps[steps > 0]
    step = float(np.median(steps)) if steps.size else (b - a)
    ncol = int(min(_MAX_COLUMNS, max(2, (b - a) / max(step, 1e-9) + 1)))
    grid = np.linspace(a, b, ncol)
    j = np.clip(np.searchsorted(ps, grid), 1, ps.size - 1) if ps.size > 1 else np.zeros(ncol, int)
    if ps.size > 1:
        j = np.where(np.abs(ps[j - 1] - grid) <= np.abs(ps[j] - grid), j - 1, j)
    gap = np.abs(ps[j] - grid) > max(3.0 * step, (b - a) / ncol)
    img = block.data[order[j]].astype(np.float32).T
    img[:, gap] = np.nan
    return img, float(grid[0]), float(grid[-1])


def _clip(block: GprBlock) -> float:
    d = block.data[:: max(1, block.n // 2000)]
    d = np.abs(d[np.isfinite(d)])
    c = float(np.percentile(d, 99)) if d.size else 1.0
    return c if c > 0 else 1.0


def _stagger(xs: Sequence[float], min_sep: float, rows: int = _LABEL_ROWS) -> list[int]:
    """A label row for each of ``xs`` (sorted) so that labels in one row are at least
    ``min_sep`` apart; -1 where no row is free (the marker is drawn, the label is not)."""
    last = [-math.inf] * rows
    out = []
    for x in xs:
        for r in range(rows):
            if x - last[r] >= min_sep:
                last[r] = x
                out.append(r)
                break
        else:
            out.append(-1)
    return out


def _not_covered(rg: Radargram) -> list[tuple[float, float, str]]:
    out = []
    for seg in rg.coverage:
        if seg.get("status") == "not_covered":
            why = ", ".join(seg.get("missing") or []) or str(seg.get("reason", ""))
            out.append((float(seg["start_m"]), float(seg["end_m"]), why))
    return out


def _title(rg: Radargram, page: int, n_pages: int) -> str:
    head = " · ".join(s for s in (rg.source, rg.instrument) if s)
    lines = [head or "radargram"]
    if rg.steps:
        lines.append("processing: " + "; ".join(rg.steps))
    lines += list(rg.notes)
    if n_pages > 1:
        lines[0] += f"  (page {page + 1}/{n_pages})"
    return "\n".join(lines)


def radargram_figures(
    rg: Radargram,
    panel_m: float | None = None,
    panels_per_page: int = PANELS_PER_PAGE,
    extra_rows: Sequence[tuple[float, Any]] = (),
) -> list[Any]:
    """The pages of ``rg`` as matplotlib Figures (nothing written). ``extra_rows``: (height
    in inches, ``draw(ax, a_m, b_m)``) rows a caller adds below each panel's own."""
    from matplotlib.figure import Figure
    from matplotlib.patches import Patch

    x0, x1 = _extent_m(rg)
    panels = panel_ranges(x0, x1, panel_m or rg.panel_m)
    pages = [panels[i : i + panels_per_page] for i in range(0, len(panels), panels_per_page)]
    rows = [("gpr", 2.6)] * (rg.gpr is not None) + [("emi", 1.1)] * (rg.emi is not None)
    has_track = bool(rg.track and (len(rg.track.get("position_m", [])) or rg.track.get("series")))
    rows += [("score", 0.75)] * has_track
    if not rows:
        rows = [("score", 0.75)]
    rows += [(f"extra{i}", h) for i, (h, _) in enumerate(extra_rows)]
    clip = _clip(rg.gpr) if rg.gpr is not None else 1.0
    gaps = _not_covered(rg)
    title_lines = len(_title(rg, 0, len(pages)).splitlines())
    figs = []
    for k, page in enumerate(pages):
        heights: list[float] = []
        for i in range(len(page)):
            heights += [h for _, h in rows] + ([0.55] if i < len(page) - 1 else [])
        head_in = 0.15 + 0.17 * title_lines + 0.45
        fig = Figure(figsize=(12.5, sum(heights) + head_in + 0.5))
        top = 1 - head_in / fig.get_figheight()
        gs = fig.add_gridspec(
            len(heights), 1, height_ratios=heights, hspace=0.08, left=0.065, right=0.86,
            top=top, bottom=0.4 / fig.get_figheight(),
        )  # fmt: skip
        fig.suptitle(_title(rg, k, len(pages)), fontsize=9, y=1 - 0.12 / fig.get_figheight(),
                     va="top")  # fmt: skip
        handles: dict[str, Any] = {}
        missing: set[str] = set()
        r0 = 0
        for a, b in page:
            axes: dict[str, Any] = {}
            first = None
            for j, (kind, _) in enumerate(rows):
                ax = fig.add_subplot(gs[r0 + j], sharex=first)
                first = first or ax
                axes[kind] = ax
                ax.set_xlim(a, b)
                ax.tick_params(labelsize=7)
                if j < len(rows) - 1:
                    ax.tick_params(labelbottom=False)
            r0 += len(rows) + 1
            axes[rows[-1][0]].set_xlabel(rg.x_label, fontsize=8)
            if "gpr" in axes:
                _draw_gpr(axes["gpr"], rg, a, b, clip, handles)
            if "emi" in axes and rg.emi is not None:
                draw_emi_gates(
                    axes["emi"],
                    rg.emi,
                    a,
                    b,
                    gates=rg.emi_gates,
                    truth=rg.truth,
                    legend=(a, b) == page[0],
                )
            if "score" in axes:
                _draw_score(axes["score"], rg, a, b)
            for i, (_, draw) in enumerate(extra_rows):
                draw(axes[f"extra{i}"], a, b)
            for s, e, why in gaps:
                if e < a or s > b:
                    continue
                for ax in axes.values():
                    ax.axvspan(max(s, a), min(e, b), facecolor="red", alpha=0.18,
                               hatch="//", edgecolor="red", lw=0)  # fmt: skip
                missing.update(w for w in why.split(", ") if w)
        if missing or any(s <= pb and e >= pa for s, e, _ in gaps for pa, pb in page):
            why = f": {', '.join(sorted(missing))}" if missing else ""
            handles["nc"] = Patch(facecolor="red", alpha=0.18, hatch="//", edgecolor="red",
                                  label=f"not covered{why}")  # fmt: skip
        if handles:
            fig.legend(handles=list(handles.values()), loc="lower left", fontsize=7,
                       ncol=min(6, len(handles)), frameon=False,
                       bbox_to_anchor=(0.06, top + 0.17 / fig.get_figheight()))  # fmt: skip
        figs.append(fig)
    return figs


def draw_bscan(
    ax: Any, block: GprBlock, a: float, b: float, clip: float, cmap: str = "gray",
    colorbar: bool = True,
) -> Any:  # fmt: skip
    """``block``'s traces of ``[a, b]`` m on a regular along-track grid, two-way time
    (ns after time zero) down; a colour bar beside unless ``colorbar`` is False."""
    t = np.arange(block.n_samples) * block.header.dt_ns - block.header.time_zero_ns
    got = _regrid(block, a, b)
    im = None
    if got is not None:
        img, ga, gb = got
        extent = (ga, gb, float(t[-1]), float(t[0]))
        im = ax.imshow(img, aspect="auto", cmap=cmap, vmin=-clip, vmax=clip, extent=extent,
                       interpolation="nearest")  # fmt: skip
        if colorbar:
            cax = ax.inset_axes((1.085, 0.0, 0.012, 1.0))
            cb = ax.figure.colorbar(im, cax=cax)
            cb.ax.tick_params(labelsize=6)
            cb.set_label(f"amplitude (clip {clip:.3g})", fontsize=7)
    ax.set_ylim(float(t[-1]), float(t[0]))
    ax.set_xlim(a, b)
    return im


def draw_truth(
    ax: Any, truth: Sequence[Mapping[str, Any]], a: float, b: float, time_ns: Any,
    labels: bool = True,
) -> list[str]:  # fmt: skip
    """Truth outlines on a B-scan: ``size_m`` wide, from the top at ``depth_m`` down by half
    the size (at least 2 cm), placed in time by ``time_ns(depth_m)``; labels (kind, depth)
    staggered along the bottom so they do not overprint. Returns the classes drawn."""
    from matplotlib.patches import Rectangle

    width = b - a
    inside = sorted((d for d in truth if a <= float(d["x_m"]) <= b), key=lambda d: d["x_m"])
    rows = _stagger([float(d["x_m"]) for d in inside], 0.09 * width, rows=3)
    for d, row in zip(inside, rows, strict=True):
        cls = str(d.get("class", ""))
        colour = CLASS_COLOURS.get(cls, "yellow")
        size = float(d.get("size_m") or 0.1)
        top = float(d.get("depth_m") or 0.0)
        t_top, t_bot = float(time_ns(top)), float(time_ns(top + max(size / 2, 0.02)))
        ax.add_patch(Rectangle((float(d["x_m"]) - size / 2, t_top), size, t_bot - t_top,
                               fill=False, edgecolor=colour, lw=1.3))  # fmt: skip
        if labels and row >= 0:
            ax.text(float(d["x_m"]), 0.03 + 0.09 * row, f"{d.get('kind', cls)} {top * 100:.0f} cm",
                    transform=ax.get_xaxis_transform(), fontsize=6.5, color=colour,
                    ha="center", va="bottom",
                    bbox={"fc": "white", "ec": "none", "alpha": 0.75, "pad": 0.5})  # fmt: skip
    return sorted({str(d.get("class", "")) for d in inside})


def _draw_gpr(
    ax: Any, rg: Radargram, a: float, b: float, clip: float, handles: dict[str, Any]
) -> None:
    from matplotlib.lines import Line2D

    assert rg.gpr is not None
    draw_bscan(ax, rg.gpr, a, b, clip)
    ax.set_ylabel("two-way time (ns)", fontsize=8)
    sec = ax.secondary_yaxis("right", functions=(rg.depth_m, rg.time_ns))
    sec.set_ylabel(f"depth (m)\nv = {rg.velocity_m_ns:.3f} m/ns, {rg.velocity_note}", fontsize=7)
    sec.tick_params(labelsize=7)
    for cls in draw_truth(ax, rg.truth, a, b, rg.time_ns):
        colour = CLASS_COLOURS.get(cls, "yellow")
        handles.setdefault(
            f"t{cls}", Line2D([], [], color=colour, lw=1.3, label=f"truth: {cls.replace('_', ' ')}")
        )
    alarms = sorted(
        (d for d in rg.alarms if a <= float(d["position_m"]) <= b), key=lambda d: d["position_m"]
    )
    rows = _stagger([float(d["position_m"]) for d in alarms], 0.045 * (b - a))
    for d, row in zip(alarms, rows, strict=True):
        x = float(d["position_m"])
        ax.plot([x], [1.0], "v", color="magenta", ms=7, transform=ax.get_xaxis_transform(),
                clip_on=False)  # fmt: skip
        if row >= 0:
            ax.text(x, 0.93 - 0.085 * row, f"{float(d['confidence']):.2f}", color="magenta",
                    transform=ax.get_xaxis_transform(), fontsize=7, ha="center", va="top",
                    bbox={"fc": "white", "ec": "none", "alpha": 0.75, "pad": 0.5})  # fmt: skip
    if alarms:
        handles.setdefault("alarm", Line2D([], [], marker="v", color="magenta", ls="none",
                                           label="alarm (confidence)"))  # fmt: skip


def draw_emi_gates(
    ax: Any, emi: MdBlock, a: float, b: float, gates: Sequence[int] | None = None,
    truth: Sequence[Mapping[str, Any]] = (), legend: bool = False, x_offset_m: float = 0.0,
) -> None:  # fmt: skip
    """EMI decay gates (all, or the ``gates`` listed) against position + ``x_offset_m`` on a
    symmetric-log axis, each labelled by its time after the pulse; truth as dotted lines."""
    import matplotlib

    pos = np.asarray(emi.position_m, dtype=np.float64) + x_offset_m
    sel = np.flatnonzero((pos >= a) & (pos <= b))
    sel = sel[:: max(1, sel.size // 4000)]
    data = np.asarray(emi.data, dtype=np.float64)
    times = getattr(emi.header, "gate_times_s", None) or ()
    names = getattr(emi.header, "channel_names", None) or ()
    n = data.shape[1]
    chosen = list(gates) if gates is not None else list(range(n))
    cmap = matplotlib.colormaps["viridis"]
    for i in chosen:
        if times and i < len(times):
            label = f"{times[i] * 1e6:.0f} µs"
        else:
            label = str(names[i]) if i < len(names) else f"ch {i}"
        ax.plot(pos[sel], data[sel, i], lw=0.6, color=cmap(i / max(1, n - 1)), label=label)
    finite = data[:, chosen][np.isfinite(data[:, chosen])]
    noise = float(np.median(np.abs(finite - np.median(finite)))) if finite.size else 1.0
    ax.set_yscale("symlog", linthresh=max(5 * noise, 1e-6))
    ax.set_ylabel("EMI gates\n(norm. V, symlog)", fontsize=8)
    ax.set_xlim(a, b)
    for d in truth:
        x = float(d["x_m"])
        if a <= x <= b:
            ax.axvline(x, color=CLASS_COLOURS.get(str(d.get("class")), "k"), lw=0.7, ls=":")
    if legend:
        ax.legend(fontsize=6, ncol=min(len(chosen), 8), loc="upper left",
                  title="gate (time after pulse)", title_fontsize=6, frameon=True,
                  framealpha=0.8)  # fmt: skip


def _draw_score(ax: Any, rg: Radargram, a: float, b: float) -> None:
    """The score profile; ``track["series"]`` (name -> {position_m, p_mine}) draws several,
    ``track["thresholds"]`` dashed lines."""
    assert rg.track is not None
    series = rg.track.get("series") or {"": rg.track}
    for name, tr in series.items():
        x = np.asarray(tr.get("position_m", []), dtype=np.float64)
        p = np.asarray(tr.get("p_mine", []), dtype=np.float64)
        sel = (x >= a) & (x <= b)
        ax.plot(x[sel], p[sel], "-" if name else "k-", lw=0.8, label=name or None)
    for thr in rg.track.get("thresholds") or ():
        ax.axhline(float(thr), ls="--", lw=0.6, color="grey")
    if len(series) > 1:
        ax.legend(fontsize=6, loc="upper right", ncol=len(series), framealpha=0.8)
    for d in rg.alarms:
        if a <= float(d["position_m"]) <= b:
            ax.axvline(float(d["position_m"]), color="magenta", lw=0.6)
    ax.set_ylim(0, 1.05)
    ax.set_ylabel("P(mine)", fontsize=8)


def save_figures(path: str | os.PathLike[str], figs: Sequence[Any], dpi: int = 90) -> list[Path]:
    """Page 1 at ``path``, page k at ``<stem>_p<k><suffix>`` beside it."""
    path = Path(path)
    out = []
    for k, fig in enumerate(figs):
        p = path if k == 0 else path.with_name(f"{path.stem}_p{k + 1}{path.suffix}")
        fig.savefig(p, dpi=dpi)
        out.append(p)
    return out


def save_radargram(
    path: str | os.PathLike[str], rg: Radargram, panel_m: float | None = None, dpi: int = 90
) -> list[Path]:
    return save_figures(path, radargram_figures(rg, panel_m), dpi)


def instrument_of(source: Mapping[str, Any]) -> str:
    """``"dzt, 400 MHz antenna"`` from a source's info (``alarms.json`` ``source``)."""
    fmt = str(source.get("format") or source.get("source") or "")
    mhz = source.get("antenna_mhz")
    if mhz is None and source.get("channels"):
        mhz = source["channels"][0].get("antenna_mhz")
    parts = [fmt] if fmt else []
    if source.get("soil"):
        parts.append(f"simulated {source['soil']}")
    parts.append(f"{float(mhz):.0f} MHz antenna" if mhz else "antenna frequency unknown")
    return ", ".join(parts)


def chain_steps(chains: Mapping[str, Any]) -> list[str]:
    """``["GPR: time_zero, background, ...", "EMI: ..."]`` from built DSP chains."""
    return [
        f"{sensor.upper()}: {', '.join(str(st.name) for st in chain.steps) or 'none'}"
        for sensor, chain in chains.items()
        if chain is not None
    ]


def file_velocity(
    path: str | os.PathLike[str] | None, info: Mapping[str, Any]
) -> tuple[float, str]:
    """(velocity m/ns, where it comes from): a DZT header's eps_r, else the default."""
    if path and info.get("format") == "dzt":
        from detect.io.formats import read_gpr

        try:
            eps = float(read_gpr(Path(path), "dzt", headers_only=True).meta.get("epsr") or 0.0)
        except Exception:  # read once already; a depth axis is not worth a failure
            eps = 0.0
        if math.isfinite(eps) and eps >= 1.0:
            return velocity_from_eps(eps), f"DZT header eps_r {eps:g}"
    return DEFAULT_VELOCITY_M_NS, "assumed (eps_r ~ 9)"


def truth_for(path: str | os.PathLike[str] | None, info: Mapping[str, Any]) -> list[dict[str, Any]]:
    """Truth of a labelled file: the CSV beside it, else a session's own truth; [] if none."""
    if not path:
        return []
    from detect.io.truth import find_truth

    try:
        found = find_truth(Path(path), None)
        if found:
            return found
        if info.get("format") == "session":
            from detect.io.session import SessionReader

            with SessionReader(Path(path)) as r:
                return list(r.truth())
    except (ValueError, OSError) as exc:  # a bad truth file: the radargram without it, said
        log.warning("%s: truth not drawn: %s", Path(path).name, str(exc).splitlines()[0])
    return []


def plot_scan(
    path: str | os.PathLike[str],
    blocks: Sequence[GprBlock | MdBlock],
    result: Mapping[str, Any],
    *,
    source: str | os.PathLike[str] | None = None,
    chains: Mapping[str, Any] | None = None,
    velocity: tuple[float, str, float] | None = None,
) -> list[Path]:
    """``scan.png`` (and ``scan_p2.png``... for a long lane): the processed profile that was
    scored, with the alarms, coverage and score profile of ``result`` (``alarms.json``);
    ``source`` (the scanned file) gives the title, the truth and the DZT's velocity,
    ``chains`` (the pipeline's DSP chains) the processing steps; ``velocity`` is
    (m/ns, where from, ground-surface time in ns) when the caller knows better than the file."""
    info = result.get("source", {}) or {}
    name = str(source or info.get("path") or info.get("source") or "")
    gpr = concat(blocks, GprBlock)
    if gpr is not None and not info.get("antenna_mhz") and gpr.header.antenna_hz:
        info = {**info, "antenna_mhz": gpr.header.antenna_hz / 1e6}
    v, note, surface_ns = velocity or (*file_velocity(source, info), 0.0)
    rg = Radargram(
        gpr=gpr,
        emi=concat(blocks, MdBlock),
        source=Path(name).name if name else "",
        instrument=instrument_of(info),
        steps=chain_steps(chains) if chains else ["the pipeline's dsp chain"],
        velocity_m_ns=v,
        velocity_note=note,
        surface_ns=surface_ns,
        alarms=result.get("alarms", []),
        truth=truth_for(source, info),
        coverage=result.get("coverage", []),
        track=result.get("track"),
    )
    return save_radargram(path, rg)


__all__ = [
    "Radargram",
    "chain_steps",
    "concat",
    "draw_bscan",
    "draw_emi_gates",
    "draw_truth",
    "file_velocity",
    "instrument_of",
    "panel_ranges",
    "plot_scan",
    "radargram_figures",
    "save_radargram",
    "truth_for",
    "velocity_from_eps",
]
