"""The survey package rendered by QGIS itself (docs/img/gis_qgis.png), headless.

A one-off documentation step, not a dependency of detect: it runs under the **system** Python
with Debian's QGIS (PyQGIS), not in the project's venv::

    apt-get install -y --no-install-recommends qgis python3-qgis
    QT_QPA_PLATFORM=offscreen /usr/bin/python3 scripts/gis_qgis_render.py PACKAGE_DIR \\
        [--out docs/img/gis_qgis.png]

PACKAGE_DIR holds ``survey.gpkg`` (``detect run``/``replay``/``scan``/``export-gis``; the
figure of docs/gis.md uses the run of ``scripts/gis_figures.py --work DIR``). Each layer is
opened the way a user adds it (*Add Vector Layer*: ``survey.gpkg|layername=NAME`` through the
OGR provider) and styled as docs/gis.md recommends: ``not_covered`` on top, solid red with a
hatch and labelled with its ``sensor``; ``alarms`` graduated on ``confidence``, a cross for
``tier`` = alarm and a hollow circle for a suspect, labelled with the id's last part and the
confidence; ``covered`` green; the ``track`` a black line. A print layout adds the title,
legend, a scale bar in metres and a north arrow, drawn in a transverse Mercator projection
centred on the package (metres, north up). It prints what QGIS read: per layer its
geometry type, CRS, feature count and fields, and each strip's area as QGIS measures it on
the ellipsoid beside its length x the swept width. Exit status 1 (one line) when QGIS cannot
open a layer.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

from qgis.core import (
    Qgis,
    QgsApplication,
    QgsCategorizedSymbolRenderer,
    QgsCoordinateReferenceSystem,
    QgsCoordinateTransform,
    QgsDistanceArea,
    QgsFillSymbol,
    QgsGradientColorRamp,
    QgsGraduatedSymbolRenderer,
    QgsLayoutExporter,
    QgsLayoutItemLabel,
    QgsLayoutItemLegend,
    QgsLayoutItemMap,
    QgsLayoutItemPicture,
    QgsLayoutItemScaleBar,
    QgsLayoutPoint,
    QgsLayoutSize,
    QgsLinePatternFillSymbolLayer,
    QgsLineSymbol,
    QgsMarkerSymbol,
    QgsPalLayerSettings,
    QgsPrintLayout,
    QgsProject,
    QgsProperty,
    QgsRectangle,
    QgsRendererCategory,
    QgsRendererRange,
    QgsSymbolLayer,
    QgsTextBufferSettings,
    QgsTextFormat,
    QgsUnitTypes,
    QgsVectorLayer,
    QgsVectorLayerSimpleLabeling,
    QgsWkbTypes,
)
from qgis.PyQt.QtCore import QRectF
from qgis.PyQt.QtGui import QColor, QFont

LAYERS = ("not_covered", "alarms", "track", "covered")  # top first, as docs/gis.md says
PAGE_MM = (300.0, 112.0)
MAP_MM = (8.0, 14.0, 284.0, 44.0)  # x, y, width, height


def open_layers(gpkg: Path) -> dict[str, QgsVectorLayer]:
    """Each layer as *Add Vector Layer* opens it; the first that QGIS cannot open ends it."""
    out = {}
    for name in LAYERS:
        layer = QgsVectorLayer(f"{gpkg}|layername={name}", name, "ogr")
        if not layer.isValid():
            sys.exit(f"gis_qgis_render: QGIS cannot open layer {name!r} of {gpkg}")
        geom = QgsWkbTypes.displayString(layer.wkbType())
        fields = ", ".join(f.name() for f in layer.fields())
        print(
            f"{name}: {geom}, {layer.crs().authid()}, {layer.featureCount()} features; "
            f"fields: {fields}"
        )
        out[name] = layer
    return out


#: not_covered categorized on ``sensor`` (docs/gis.md): fill RGBA and hatch angle per value
NOT_COVERED = {
    "gpr": ("239,83,80,150", 45.0),
    "emi": ("255,167,38,150", -45.0),
    "emi,gpr": ("183,28,28,170", 0.0),
}


def _red(fill: str, angle: float) -> QgsFillSymbol:
    sym = QgsFillSymbol.createSimple(
        {"color": fill, "outline_color": "183,28,28,255", "outline_width": "0.4"}
    )
    hatch = QgsLinePatternFillSymbolLayer()
    hatch.setLineAngle(angle)
    hatch.setDistance(1.2)
    hatch.setColor(QColor(120, 0, 0))
    sym.appendSymbolLayer(hatch)
    return sym


def strip_areas(layers: dict[str, QgsVectorLayer], width_m: float) -> None:
    """Each strip's area as QGIS measures it (on the WGS84 ellipsoid) against its
    ``length_m`` x the swept width: a polygon that does not match its stretch shows here."""
    da = QgsDistanceArea()
    da.setSourceCrs(layers["covered"].crs(), QgsProject.instance().transformContext())
    da.setEllipsoid("WGS84")
    for name in ("covered", "not_covered"):
        for f in layers[name].getFeatures():
            area = da.measureArea(f.geometry())
            want = float(f["length_m"]) * width_m
            print(
                f"  {f['id']}: {f['start_m']:.2f}-{f['end_m']:.2f} m, area {area:.3f} m2 "
                f"(length x {width_m:g} m: {want:.3f})"
            )


def style(layers: dict[str, QgsVectorLayer]) -> None:
    nc = layers["not_covered"]
    present = {str(f["sensor"]) for f in nc.getFeatures()}
    cats = [
        QgsRendererCategory(v, _red(*NOT_COVERED[v]), f"not covered: {v}")
        for v in NOT_COVERED
        if v in present
    ]
    cats += [  # any other value still drawn loud, never left out of the map
        QgsRendererCategory(v, _red("239,83,80,150", 90.0), f"not covered: {v}")
        for v in sorted(present - set(NOT_COVERED))
    ]
    nc.setRenderer(QgsCategorizedSymbolRenderer("sensor", cats))
    _label(
        nc,
        'CASE WHEN "length_m" >= 0.5 THEN \'NOT COVERED: \' || "sensor" END',
        QColor(183, 28, 28),
        below=True,
    )

    cov = layers["covered"]
    cov.renderer().setSymbol(
        QgsFillSymbol.createSimple(
            {"color": "102,187,106,115", "outline_color": "46,125,50,200", "outline_width": "0.2"}
        )
    )
    layers["track"].renderer().setSymbol(
        QgsLineSymbol.createSimple({"color": "0,0,0,255", "width": "0.45"})
    )

    al = layers["alarms"]
    marker = QgsMarkerSymbol.createSimple(
        {
            "name": "cross_fill",
            "size": "4.2",
            "angle": "45",
            "outline_color": "0,0,0,255",
            "outline_width": "0.25",
        }
    )
    sl = marker.symbolLayer(0)
    suspect = "\"tier\" = 'suspect'"
    sl.setDataDefinedProperty(
        QgsSymbolLayer.PropertyName,
        QgsProperty.fromExpression(f"CASE WHEN {suspect} THEN 'circle' ELSE 'cross_fill' END"),
    )
    sl.setDataDefinedProperty(
        QgsSymbolLayer.PropertySize,
        QgsProperty.fromExpression(f"CASE WHEN {suspect} THEN 2.6 ELSE 4.2 END"),
    )
    # fixed classes of the probability (not the data's range): the same colours in every run
    ramp = QgsGradientColorRamp(QColor(255, 213, 79), QColor(26, 35, 126))
    ranges = []
    for k, (lo, hi) in enumerate(((0.0, 0.25), (0.25, 0.5), (0.5, 0.75), (0.75, 1.0))):
        sym = marker.clone()
        sym.setColor(ramp.color(k / 3))
        ranges.append(QgsRendererRange(lo, hi, sym, f"confidence {lo:.2f}-{hi:.2f}"))
    al.setRenderer(QgsGraduatedSymbolRenderer("confidence", ranges))
    _label(
        al,
        "regexp_substr(\"id\", '[^-]+$') || '  ' || format_number(\"confidence\", 2)",
        QColor(0, 0, 0),
    )


def _label(layer: QgsVectorLayer, expression: str, color: QColor, below: bool = False) -> None:
    fmt = QgsTextFormat()
    fmt.setFont(QFont("DejaVu Sans", 8))
    fmt.setSize(7.5)
    fmt.setColor(color)
    buf = QgsTextBufferSettings()
    buf.setEnabled(True)
    buf.setSize(0.8)
    buf.setColor(QColor(255, 255, 255))
    fmt.setBuffer(buf)
    pal = QgsPalLayerSettings()
    pal.fieldName = expression
    pal.isExpression = True
    pal.setFormat(fmt)
    pal.displayAll = True  # never hide a label behind another: every feature is named
    if layer.geometryType() == QgsWkbTypes.PointGeometry:
        pal.placement = QgsPalLayerSettings.OrderedPositionsAroundPoint
        pal.dist = 1.5
    else:
        pal.placement = QgsPalLayerSettings.OverPoint
        pal.yOffset = 9.0 if below else 0.0  # mm: below a 0.5 m strip at this scale
    layer.setLabeling(QgsVectorLayerSimpleLabeling(pal))
    layer.setLabelsEnabled(True)


def local_crs(
    layers: dict[str, QgsVectorLayer],
) -> tuple[QgsCoordinateReferenceSystem, QgsRectangle]:
    """A transverse Mercator centred on the package (metres, grid north = true north there)
    and the layers' extent in it."""
    ext = QgsRectangle()
    for layer in layers.values():
        ext.combineExtentWith(layer.extent())
    c = ext.center()
    crs = QgsCoordinateReferenceSystem.fromProj(
        f"+proj=tmerc +lat_0={c.y():.7f} +lon_0={c.x():.7f} +k=1 +x_0=0 +y_0=0 "
        "+ellps=WGS84 +units=m +no_defs"
    )
    tr = QgsCoordinateTransform(layers["track"].crs(), crs, QgsProject.instance())
    return crs, tr.transformBoundingBox(ext)


def layout(project: QgsProject, layers: dict[str, QgsVectorLayer], title: str) -> QgsPrintLayout:
    crs, ext = local_crs(layers)
    lay = QgsPrintLayout(project)
    lay.initializeDefaults()
    lay.pageCollection().page(0).setPageSize(QgsLayoutSize(*PAGE_MM))

    m = QgsLayoutItemMap(lay)
    m.attemptSetSceneRect(QRectF(*MAP_MM))
    m.setCrs(crs)
    m.setLayers([layers[n] for n in LAYERS])
    w, h = MAP_MM[2], MAP_MM[3]  # the extent at the item's aspect, the lane plus a margin
    cx, cy = ext.center().x(), ext.center().y()
    half_w = max(ext.width() / 2 + 0.6, (ext.height() / 2 + 0.5) * w / h)
    half_h = half_w * h / w
    m.zoomToExtent(QgsRectangle(cx - half_w, cy - half_h, cx + half_w, cy + half_h))
    m.setFrameEnabled(True)
    lay.addLayoutItem(m)

    t = QgsLayoutItemLabel(lay)
    t.setText(title)
    t.setFont(QFont("DejaVu Sans", 13))
    t.adjustSizeToText()
    t.attemptMove(QgsLayoutPoint(MAP_MM[0], 4.0))
    lay.addLayoutItem(t)

    sb = QgsLayoutItemScaleBar(lay)
    sb.setStyle("Single Box")
    sb.setLinkedMap(m)
    sb.setUnits(QgsUnitTypes.DistanceMeters)
    sb.setUnitLabel("m")
    sb.setUnitsPerSegment(1.0)
    sb.setNumberOfSegments(2)
    sb.setNumberOfSegmentsLeft(0)
    sb.update()
    sb.attemptMove(QgsLayoutPoint(MAP_MM[0] + MAP_MM[2] - 62.0, MAP_MM[1] + MAP_MM[3] - 12.0))
    lay.addLayoutItem(sb)

    na = QgsLayoutItemPicture(lay)
    na.setPicturePath("/usr/share/qgis/svg/arrows/NorthArrow_02.svg")
    na.setLinkedMap(m)
    na.setNorthMode(QgsLayoutItemPicture.TrueNorth)
    na.attemptSetSceneRect(QRectF(MAP_MM[0] + MAP_MM[2] - 14.0, MAP_MM[1] + 2.0, 11.0, 14.0))
    lay.addLayoutItem(na)

    lg = QgsLayoutItemLegend(lay)
    lg.setLinkedMap(m)
    lg.setTitle("")
    lg.setColumnCount(3)
    lg.setSplitLayer(False)
    lg.attemptMove(QgsLayoutPoint(MAP_MM[0], MAP_MM[1] + MAP_MM[3] + 2.0))
    lay.addLayoutItem(lg)

    note = QgsLayoutItemLabel(lay)
    note.setText(
        "alarms: a cross where tier = alarm, a small circle where tier = suspect; colour by "
        "confidence; label: the id's last part and the confidence.\n"
        "not_covered: categorized on sensor (the sensors that did not cover that ground); "
        "Identify Features shows its reason."
    )
    note.setFont(QFont("DejaVu Sans", 8))
    note.attemptSetSceneRect(QRectF(MAP_MM[0], PAGE_MM[1] - 11.0, MAP_MM[2], 10.0))
    lay.addLayoutItem(note)
    return lay


def _palette(path: Path) -> None:
    """A 64-colour palette where Pillow is there (python3-pil): small in the repository."""
    try:
        from PIL import Image
    except ImportError:
        return
    with Image.open(path) as im:
        small = im.convert("RGB").quantize(64)
    small.save(path, optimize=True)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("package", type=Path, help="folder with survey.gpkg")
    ap.add_argument("--out", type=Path, default=Path("docs/img/gis_qgis.png"))
    ap.add_argument("--dpi", type=int, default=130)
    ap.add_argument("--swept-width-m", type=float, default=0.5, help="the run's swept width")
    args = ap.parse_args()
    gpkg = args.package / "survey.gpkg"
    if not gpkg.is_file():
        sys.exit(f"gis_qgis_render: no {gpkg}")
    QgsApplication.setPrefixPath("/usr", True)
    app = QgsApplication([], False)
    app.initQgis()
    try:
        project = QgsProject.instance()
        layers = open_layers(gpkg.resolve())
        project.addMapLayers(list(layers.values()))
        strip_areas(layers, args.swept_width_m)
        style(layers)
        lay = layout(project, layers, f"QGIS {Qgis.QGIS_VERSION}: survey.gpkg, its four layers")
        settings = QgsLayoutExporter.ImageExportSettings()
        settings.dpi = args.dpi
        settings.exportMetadata = False
        settings.generateWorldFile = False
        args.out.parent.mkdir(parents=True, exist_ok=True)
        err = QgsLayoutExporter(lay).exportToImage(str(args.out), settings)
        if err != QgsLayoutExporter.Success:
            sys.exit(f"gis_qgis_render: QGIS could not export {args.out} (error {err})")
        _palette(args.out)
        print(f"wrote {args.out}")
    finally:
        app.exitQgis()


if __name__ == "__main__":
    main()
