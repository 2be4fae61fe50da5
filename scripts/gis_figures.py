"""The map of docs/gis.md (docs/img/gis_layers.png), drawn from the survey package's files.

A simulated 10 m lane whose GPR link is lost for 3 s (the emulator's fault injection,
``source.fault_gpr_after_s=8 source.fault_gpr_for_s=3``) goes through ``detect run``, which
writes the package (``survey.gpkg`` and the GeoJSON layers) as in the field. The figure is then
drawn only from ``survey.gpkg``, read back with GDAL (pyogrio) and parsed here (WKB), so it shows
what a GIS gets, not what the pipeline meant to write: the track, the ground covered (green)
and NOT covered (red, hatched, with each polygon's ``sensor`` and ``reason``), the alarms and
the suspects (``tier``) with their ids and confidences, a scale bar, a north arrow and the
longitude/latitude of the map's edges.

    .venv/bin/python scripts/gis_figures.py [--out docs/img/gis_layers.png] [--work DIR] [--seed 0]
    .venv/bin/python scripts/gis_figures.py --package DIR --out map.png   # any package, no run

``--work`` keeps the run's output (the package included; default: a temporary folder);
``--package`` draws the ``survey.gpkg`` of an existing package (``run``/``export-gis``) instead.
Exit status: 0 drawn; 1 no readable package (one line says what is missing).
"""

from __future__ import annotations

import argparse
import math
import shutil
import struct
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from io import BytesIO
from pathlib import Path
from typing import Any

import matplotlib
import numpy as np

matplotlib.use("Agg")
import matplotlib.pyplot as plt
from matplotlib.lines import Line2D
from matplotlib.patches import Patch, Polygon

LAYERS = ("alarms", "track", "covered", "not_covered")
#: The scenario of the caption: one 10 m lane, the GPR stream stops 8 s in, for 3 s.
RUN_OVERRIDES = (
    "run.display=false",
    "run.bell=false",
    "source.realtime=false",
    "source.n_lanes=1",
    "source.fault_gpr_after_s=8",
    "source.fault_gpr_for_s=3",
)
# WGS84: metres per radian of latitude / longitude near a latitude (the map is ~10 m across, so
# a local tangent plane is exact to well under a millimetre; independent of detect.geo)
WGS84_A_M, WGS84_E2 = 6378137.0, 6.69437999014e-3
NAVY, GREY = "#1a237e", "#555555"


# --------------------------------------------------------------------------------------------
# the run
def detect_exe() -> str:
    """The ``detect`` command of the Python running this script (the venv's), else PATH's."""
    beside = Path(sys.executable).with_name("detect")
    return str(beside) if beside.exists() else (shutil.which("detect") or "detect")


def simulate(work: Path, seed: int) -> list[str]:
    """Run the lane with the GPR fault into ``work``; the command line as run."""
    cmd = [detect_exe(), "run", *RUN_OVERRIDES, f"seed={seed}", f"run.out_dir={work}"]
    rc = subprocess.run(cmd, check=False).returncode
    # 4: ground not covered, which is the point of the scenario; anything else is unexpected
    if rc not in (0, 4):
        sys.exit(f"gis_figures: '{' '.join(cmd)}' ended with exit status {rc}")
    return cmd


# --------------------------------------------------------------------------------------------
# reading the GeoPackage back
@dataclass
class Feature:
    props: dict[str, Any]
    kind: str  # Point, LineString, Polygon, MultiLineString, ...
    parts: list[np.ndarray]  # (k, 2) lon/lat arrays: the point, the line(s), the rings


def _wkb(buf: bytes, at: int = 0) -> tuple[str, list[np.ndarray], int]:
    """One WKB geometry (2D; Point, LineString, Polygon, Multi*) from ``buf[at:]``:
    (type name, coordinate arrays, offset after it)."""
    order = "<" if buf[at] == 1 else ">"
    (code,) = struct.unpack_from(order + "I", buf, at + 1)
    at += 5
    code %= 1000  # ISO 'Z'/'M' variants are not written by the package
    kinds = {1: "Point", 2: "LineString", 3: "Polygon", 5: "MultiLineString", 6: "MultiPolygon"}
    if code not in kinds:
        raise ValueError(f"WKB geometry type {code} not expected in the survey package")

    def points(n: int) -> np.ndarray:
        nonlocal at
        xy = np.frombuffer(buf, dtype=order + "f8", count=2 * n, offset=at).reshape(n, 2)
        at += 16 * n
        return xy

    def count() -> int:
        nonlocal at
        (n,) = struct.unpack_from(order + "I", buf, at)
        at += 4
        return int(n)

    kind = kinds[code]
    if kind == "Point":
        return kind, [points(1)], at
    if kind == "LineString":
        return kind, [points(count())], at
    if kind == "Polygon":
        return kind, [points(count()) for _ in range(count())], at
    parts: list[np.ndarray] = []
    for _ in range(count()):
        _, sub, at = _wkb(buf, at)
        parts += sub
    return kind, parts, at


def read_gpkg(path: Path) -> dict[str, list[Feature]]:
    """The four layers of ``survey.gpkg`` as GDAL reads them (features in file order)."""
    from pyogrio import list_layers, raw, read_info

    have = {str(name) for name, _ in list_layers(path)}
    missing = [n for n in LAYERS if n not in have and n != "alarms"]  # no alarms: no layer
    if missing:
        sys.exit(f"gis_figures: {path}: layer(s) {', '.join(missing)} missing")
    out: dict[str, list[Feature]] = {}
    for name in LAYERS:
        if name not in have:
            out[name] = []
            continue
        crs = str(read_info(path, layer=name)["crs"])
        if "4326" not in crs:
            sys.exit(f"gis_figures: {path} layer {name}: CRS {crs}, not WGS84 (EPSG:4326)")
        meta, _, geoms, fields = raw.read(str(path), layer=name)
        cols = [str(c) for c in meta["fields"]]
        feats = []
        for i, g in enumerate(geoms):
            props = {c: _plain(fields[j][i]) for j, c in enumerate(cols)}
            kind, parts, _ = _wkb(bytes(g)) if g is not None else ("None", [], 0)
            feats.append(Feature(props, kind, parts))
        out[name] = feats
    return out


def _plain(v: Any) -> Any:
    return v.item() if isinstance(v, np.generic) else v


# --------------------------------------------------------------------------------------------
# map frame
@dataclass(frozen=True)
class Enu:
    """Local east/north metres from ``(lon0, lat0)`` on the WGS84 ellipsoid."""

    lon0: float
    lat0: float

    def scales(self) -> tuple[float, float]:
        """(m per degree of longitude, m per degree of latitude) at ``lat0``."""
        s = math.sin(math.radians(self.lat0))
        n_m = WGS84_A_M / math.sqrt(1 - WGS84_E2 * s * s)  # prime vertical radius
        m_m = WGS84_A_M * (1 - WGS84_E2) / (1 - WGS84_E2 * s * s) ** 1.5  # meridian radius
        return math.radians(1) * n_m * math.cos(math.radians(self.lat0)), math.radians(1) * m_m

    def __call__(self, lonlat: np.ndarray) -> np.ndarray:
        ke, kn = self.scales()
        return np.c_[(lonlat[:, 0] - self.lon0) * ke, (lonlat[:, 1] - self.lat0) * kn]


# --------------------------------------------------------------------------------------------
# drawing
def _short_id(fid: str) -> str:
    """``A20261207T143622-0004`` -> ``0004`` (the run's prefix is said once in the title)."""
    return fid.rsplit("-", 1)[-1]


def _place_labels(xs: np.ndarray, levels: list[float], gap_m: float) -> list[float]:
    """A y level per label (in the order of ``xs``, sorted along x): the first level, in
    the order given, whose last label is at least ``gap_m`` to the left (else the freest)."""
    last = {lv: -math.inf for lv in levels}
    out = []
    for x in xs:
        free = [lv for lv in levels if x - last[lv] >= gap_m]
        lv = free[0] if free else min(levels, key=lambda k: last[k])
        last[lv] = x
        out.append(lv)
    return out


def _clusters(feats: list[Feature]) -> list[list[Feature]]:
    """Not-covered polygons that touch along the track (same epoch, end == next start)."""
    order = sorted(feats, key=lambda f: (f.props["epoch"], f.props["start_m"], f.props["end_m"]))
    groups: list[list[Feature]] = []
    for f in order:
        prev = groups[-1][-1] if groups else None
        if (
            prev is not None
            and prev.props["epoch"] == f.props["epoch"]
            and f.props["start_m"] <= prev.props["end_m"] + 1e-6
        ):
            groups[-1].append(f)
        else:
            groups.append([f])
    return groups


def draw(layers: dict[str, list[Feature]], out: Path, note: str, what: str) -> None:
    track = [f for f in layers["track"] if f.parts]
    if not track:
        sys.exit("gis_figures: the track layer has no geometry: nothing to draw a map around")
    origin = track[0].parts[0][0]
    enu = Enu(float(origin[0]), float(origin[1]))
    fig = plt.figure(figsize=(14, 7.4))
    ax = fig.add_axes((0.05, 0.33, 0.9, 0.55))
    tab = fig.add_axes((0.05, 0.015, 0.9, 0.2))
    tab.axis("off")

    for f in layers["covered"]:
        for ring in f.parts:
            ax.add_patch(Polygon(enu(ring), fc="#66bb6a", ec="#2e7d32", alpha=0.45, lw=1))
    nc = [f for f in layers["not_covered"] if f.parts]
    for f in nc:
        for ring in f.parts:
            ax.add_patch(Polygon(enu(ring), fc="#ef9a9a", ec="#b71c1c", hatch="////", lw=1.2))
    for f in track:
        for part in f.parts:
            xy = enu(part)
            ax.plot(xy[:, 0], xy[:, 1], color="black", lw=1.3, zorder=3)
        first, last = enu(f.parts[0])[0], enu(f.parts[-1])
        ax.plot(*first, "o", color="black", ms=5, zorder=3)
        ax.annotate(
            "",
            xy=last[-1],
            xytext=last[-6],
            zorder=3,
            arrowprops={"arrowstyle": "-|>", "color": "black", "lw": 1.3},
        )
        ax.annotate(
            "start",
            first,
            (first[0], first[1] + 0.42),
            ha="center",
            fontsize=9,
            arrowprops={"arrowstyle": "-", "color": GREY, "lw": 0.6},
        )

    # alarms and suspects: shape by tier, id and confidence in the label
    pts = [f for f in layers["alarms"] if f.parts]
    pts.sort(key=lambda f: float(enu(f.parts[0])[0, 0]))
    xy = np.array([enu(f.parts[0])[0] for f in pts]).reshape(-1, 2)
    levels = [0.62, -0.62, 1.02, -1.02, 1.42, -1.42]
    for f, (x, y), ly in zip(pts, xy, _place_labels(xy[:, 0], levels, 1.15), strict=True):
        p = f.props
        suspect = p.get("tier") == "suspect"
        if suspect:
            ax.scatter(x, y, s=70, facecolors="white", edgecolors=NAVY, linewidths=1.6, zorder=5)
        else:
            ax.scatter(
                x, y, s=150, marker="X", c=NAVY, edgecolors="white", linewidths=0.8, zorder=5
            )
        text = f"{_short_id(str(p['id']))}  {p['confidence']:.2f}\n{p.get('class') or ''}"
        ax.annotate(
            text,
            (x, y),
            (x, ly),
            ha="center",
            va="bottom" if ly > 0 else "top",
            fontsize=8.5,
            color=GREY if suspect else "black",
            fontweight="normal" if suspect else "bold",
            fontstyle="italic" if suspect else "normal",
            zorder=6,
            arrowprops={"arrowstyle": "-", "color": GREY, "lw": 0.6, "shrinkA": 0, "shrinkB": 4},
        )

    # not covered: each group of touching polygons gets one callout, one row per polygon
    rows = []
    for group in _clusters(nc):
        tags = []
        for f in group:
            rows.append(f)
            tags.append(f"N{len(rows)}: {f.props['sensor'] or '?'}")
        ring = np.concatenate([enu(r) for f in group for r in f.parts])
        cx, bottom = float(ring[:, 0].mean()), float(ring[:, 1].min())
        ax.annotate(
            "NOT COVERED\n" + "\n".join(tags),
            (cx, bottom),
            (cx, -1.95),
            ha="center",
            va="top",
            fontsize=8.5,
            color="#b71c1c",
            fontweight="bold",
            arrowprops={"arrowstyle": "-|>", "color": "#b71c1c", "lw": 0.9},
        )

    _frame(ax, enu, xy, nc)
    _north_and_scale(ax)
    handles = [
        Line2D([], [], color="black", lw=1.3, marker=">", ms=5, label="track (as walked)"),
        Patch(fc="#66bb6a", ec="#2e7d32", alpha=0.45, label="covered"),
        Patch(fc="#ef9a9a", ec="#b71c1c", hatch="////", label="NOT covered (N1.. below)"),
        Line2D(
            [],
            [],
            ls="",
            marker="X",
            ms=10,
            mfc=NAVY,
            mec="white",
            label="alarm (tier=alarm): id, confidence, class",
        ),
        Line2D(
            [],
            [],
            ls="",
            marker="o",
            ms=8,
            mfc="white",
            mec=NAVY,
            mew=1.6,
            label="suspect (tier=suspect, below the operating point)",
        ),
    ]
    fig.legend(
        handles=handles,
        loc="center",
        bbox_to_anchor=(0.5, 0.255),
        ncol=5,
        fontsize=9,
        frameon=False,
    )
    prefix = str(pts[0].props["id"]).rsplit("-", 1)[0] if pts else ""
    fig.suptitle(
        f"survey.gpkg as GDAL reads it: {what}\n"
        f"{len([p for p in pts if p.props.get('tier') != 'suspect'])} alarms, "
        f"{len([p for p in pts if p.props.get('tier') == 'suspect'])} suspects"
        + (f" (ids {prefix}-...)" if prefix else "")
        + f"; {len(nc)} not-covered polygons",
        fontsize=11,
        y=0.985,
    )
    _table(tab, rows)
    fig.text(0.995, 0.003, note, ha="right", va="bottom", fontsize=7, color=GREY)
    _save(fig, out)


def _frame(ax: Any, enu: Enu, xy: np.ndarray, nc: list[Feature]) -> None:
    """Axes in metres east/north of the origin, with its lon/lat on the opposite sides."""
    ax.set_aspect("equal")
    ax.set_xlim(-0.8, 11.3)
    ax.set_ylim(-3.05, 2.05)
    ax.set_xlabel(f"metres east of {enu.lon0:.7f}° E", fontsize=9)
    ax.set_ylabel(f"metres north of\n{enu.lat0:.7f}° N", fontsize=9)
    ax.grid(True, color="#dddddd", lw=0.5, zorder=0)
    ke, kn = enu.scales()
    top = ax.secondary_xaxis(
        "top", functions=(lambda e: enu.lon0 + e / ke, lambda lon: (lon - enu.lon0) * ke)
    )
    top.set_xlabel("longitude (° E, WGS84)", fontsize=8, color=GREY)
    top.xaxis.set_major_formatter(matplotlib.ticker.FormatStrFormatter("%.5f"))
    top.tick_params(labelsize=7, colors=GREY)
    right = ax.secondary_yaxis(
        "right", functions=(lambda n: enu.lat0 + n / kn, lambda lat: (lat - enu.lat0) * kn)
    )
    right.set_ylabel("latitude (° N)", fontsize=8, color=GREY)
    right.yaxis.set_major_formatter(matplotlib.ticker.FormatStrFormatter("%.5f"))
    right.tick_params(labelsize=7, colors=GREY)
    ax.tick_params(labelsize=8)


def _north_and_scale(ax: Any) -> None:
    """A north arrow (grid north is true north in this local frame) and a 2 m scale bar."""
    ax.annotate(
        "N",
        xy=(0.975, 0.93),
        xytext=(0.975, 0.72),
        xycoords="axes fraction",
        ha="center",
        va="top",
        fontsize=11,
        fontweight="bold",
        arrowprops={"arrowstyle": "-|>", "color": "black", "lw": 1.6},
    )
    x0, y0 = 8.6, -2.75
    for k in range(2):
        ax.add_patch(
            plt.Rectangle(
                (x0 + k, y0),
                1.0,
                0.09,
                fc="black" if k % 2 == 0 else "white",
                ec="black",
                lw=0.8,
                zorder=4,
            )
        )
    for k, lab in ((0, "0"), (1, "1"), (2, "2 m")):
        ax.text(x0 + k, y0 + 0.14, lab, ha="center", va="bottom", fontsize=8)


def _table(ax: Any, rows: list[Feature]) -> None:
    """The not_covered layer's attributes, one row per polygon (N1.. as on the map)."""
    if not rows:
        ax.text(0.5, 0.5, "not_covered layer: no features", ha="center", fontsize=9)
        return
    cells = [
        [
            f"N{i}",
            f.props["sensor"] or "?",
            f"{f.props['start_m']:.2f}-{f.props['end_m']:.2f}",
            f"{f.props['length_m']:.2f}",
            str(f.props["reason"]),
        ]
        for i, f in enumerate(rows, 1)
    ]
    widths = [0.03, 0.07, 0.14, 0.07, 0.69]
    t = ax.table(
        cells,
        colLabels=[
            "",
            "sensor",
            "start-end (m along track)",
            "length (m)",
            "reason (attributes of the not_covered layer)",
        ],
        colWidths=widths,
        loc="upper center",
        cellLoc="left",
    )
    t.auto_set_font_size(False)
    t.set_fontsize(8)
    t.scale(1, 1.05)
    for (r, c), cell in t.get_celld().items():
        cell.set_edgecolor("#cccccc")
        cell.PAD = 0.006 / widths[c]  # the same small margin in every column
        if r == 0:
            cell.set_text_props(fontweight="bold")


def _save(fig: Any, path: Path, dpi: int = 110) -> None:
    """PNG with a 64-colour palette: the figures stay small in the repository."""
    from PIL import Image

    buf = BytesIO()
    fig.savefig(buf, dpi=dpi, format="png")
    plt.close(fig)
    buf.seek(0)
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.open(buf).convert("RGB").quantize(64).save(path, optimize=True)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", type=Path, default=Path("docs/img/gis_layers.png"))
    ap.add_argument("--work", type=Path, default=None, help="keep the run here (default: temp)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--package", type=Path, default=None, help="draw this package; no run")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory(prefix="gis_figures_") as tmp:
        if args.package is not None:
            gpkg, what = args.package / "survey.gpkg", str(args.package)
            note = f"scripts/gis_figures.py --package {args.package}"
        else:
            work = args.work or Path(tmp)
            work.mkdir(parents=True, exist_ok=True)
            cmd = simulate(work, args.seed)
            gpkg, what = work / "survey.gpkg", "simulated 10 m lane, GPR link lost for 3 s"
            note = "scripts/gis_figures.py: " + " ".join(["detect", *cmd[1:-1]])
        if not gpkg.is_file():
            sys.exit(f"gis_figures: no {gpkg} (is pyogrio, the gis extra, installed?)")
        draw(read_gpkg(gpkg), args.out, note, what)
    print(f"wrote {args.out} from {gpkg}", flush=True)


if __name__ == "__main__":
    main()
