"""A scene of :mod:`detect.sim.scene` as a 2-D TMz gprMax input file (text).

The model is the vertical plane under the scan line: ``x`` along track, ``y`` up, one cell
in ``z``. Soil fills the lower part as a Peplinski mixture spread by a seeded
``#fractal_box`` (its water fraction set so the mean permittivity is the soil's ``eps_r``,
:mod:`detect.sim.fdtd.soils`), with a seeded ``#add_surface_roughness`` of the soil's rms
roughness and optionally a wetter layer. Each buried object is its cross-section in that
plane, from the project's target library: a mine is a rectangle of case material with its
explosive fill, the air gap under a pressure mine's top and a small metal part (fuze
striker) where ``metal_depth_frac`` puts it; a metal body is a perfect conductor; rods are
the box their length and axis project onto the plane; blobs are discs. An object off the
scan line enters with its chord (a disc of radius r at lateral offset y: 2 sqrt(r^2 - y^2)).

A Hertzian dipole (Ez) with a Ricker waveform and a receiver ``antenna_offset_m`` further
along track step together (``#src_steps``/``#rx_steps``); trace i's position is the
midpoint of the pair. Every coordinate is a whole number of cells, so what gprMax builds
is what this module says (and the hash of the text names the result).

Seeds of the soil and surface come from the scene's seed only, so a scene and its
empty-soil twin (same seed, no objects) differ only by the objects.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from typing import Any

from detect.sim.fdtd.settings import FdtdSettings
from detect.sim.fdtd.soils import texture_of, water_range
from detect.sim.scene import PlacedTarget, Scene

#: explosive fill (TNT / RDX mixtures: eps 2.7-3.2, lossless at GPR frequencies)
FILL_EPS = 2.9
#: mine case wall thickness
WALL_M = 0.003
#: air gap under a pressure mine's top, as a share of its height
AIR_GAP_FRAC = 0.12
#: conductivity of water-bearing non-metal bodies (roots: eps ~20)
WET_SIGMA_S_M = 0.05
MINE_CLASSES = ("ap_mine", "at_mine")


@dataclass(frozen=True)
class Shape:
    """A 2-D primitive in domain metres: a box (x0, y0, x1, y1) or a disc (cx, cy, r)."""

    kind: str  # "box" | "disc"
    material: str
    a: float
    b: float
    c: float
    d: float = 0.0


@dataclass(frozen=True)
class Layout:
    """Where the scan sits in the gprMax domain (all whole cells)."""

    nx: int
    ny: int
    surface_cell: int  # y cell of the mean surface
    tx0_cell: int  # x cell of the first source position
    rx_offset_cells: int
    step_cells: int
    antenna_cell_y: int
    dx_m: float

    @property
    def x0_m(self) -> float:
        """Domain x of trace 0 (midpoint of transmitter and receiver)."""
        return (self.tx0_cell + 0.5 * self.rx_offset_cells) * self.dx_m

    @property
    def surface_m(self) -> float:
        return self.surface_cell * self.dx_m


def layout(s: FdtdSettings) -> Layout:
    dx = s.dx_m
    cells = lambda m: round(m / dx)  # noqa: E731
    off = cells(s.antenna_offset_m)
    scan = (s.n_traces - 1) * s.step_cells
    tx0 = s.pml_cells + cells(s.margin_m)
    nx = tx0 + scan + off + cells(s.margin_m) + s.pml_cells
    surface = s.pml_cells + cells(s.soil_depth_m)
    ant = surface + max(1, cells(s.antenna_height_m))
    ny = ant + cells(s.air_m) + s.pml_cells + 1
    return Layout(nx, ny, surface, tx0, off, s.step_cells, ant, dx)


def _material_name(eps: float, sigma: float) -> str:
    return f"eps{eps:g}_sig{sigma:g}".replace(".", "p").replace("-", "m")


def target_shapes(t: PlacedTarget, x_m: float, surface_m: float, dx_m: float) -> list[Shape]:
    """Cross-section of ``t`` centred at domain ``x_m`` (its top ``depth_m`` below the
    surface ``surface_m``), drawn in order (later shapes overwrite earlier ones)."""
    k = t.kind
    top = surface_m - t.depth_m
    half_y = abs(t.y_m)
    snap = lambda m: max(dx_m, m)  # noqa: E731  (nothing thinner than a cell)
    if k.shape == "rod":
        ax = [abs(float(a)) for a in t.axis]
        norm = math.sqrt(sum(a * a for a in ax)) or 1.0
        if half_y > 0.5 * max(t.diameter_m, t.height_m * ax[1] / norm):
            return []
        w = snap(max(t.diameter_m, t.height_m * ax[0] / norm))
        h = snap(max(t.diameter_m, t.height_m * ax[2] / norm))
    else:
        r = 0.5 * t.diameter_m
        if half_y >= r:
            return []
        w = snap(2 * math.sqrt(r * r - half_y * half_y)) if k.shape != "box" else t.diameter_m
        h = snap(t.height_m)
    x0, x1 = x_m - 0.5 * w, x_m + 0.5 * w
    y1, y0 = top, top - h
    if k.eps_body is None:
        mat = "pec"
    elif k.eps_body <= 1.0:
        mat = "free_space"
    else:
        sigma = WET_SIGMA_S_M if k.eps_body >= 15 else 0.0
        mat = _material_name(k.eps_body, sigma)
    if k.shape == "blob":  # a disc of the blob's mean diameter, its top at the depth
        r = snap(0.5 * math.sqrt(w * h))
        return [Shape("disc", mat, x_m, top - r, r)]
    shapes = [Shape("box", mat, x0, y0, x1, y1)]
    if k.cls in MINE_CLASSES and k.eps_body is not None:
        wall = snap(WALL_M)
        if w > 2 * wall + dx_m and h > 2 * wall + dx_m:
            shapes.append(Shape("box", _material_name(FILL_EPS, 0.0), x0 + wall, y0 + wall,
                                x1 - wall, y1 - wall))  # fmt: skip
            if k.cls == "ap_mine":
                gap = snap(AIR_GAP_FRAC * h)
                inset = 0.1 * w
                shapes.append(Shape("box", "free_space", x0 + wall + inset, y1 - wall - gap,
                                    x1 - wall - inset, y1 - wall))  # fmt: skip
        if t.metal_mass_g > 0 and k.metal_scale_m > 0:
            m = snap(2 * k.metal_scale_m)
            my = y1 - k.metal_depth_frac * h - wall
            my = min(max(my, y0 + wall + m), y1 - wall)
            shapes.append(Shape("box", "pec", x_m - 0.5 * m, my - m, x_m + 0.5 * m, my))
    return shapes


def _in_domain(shapes: list[Shape], width_m: float) -> list[Shape]:
    """The shapes with boxes clipped to the domain's width; none when any disc crosses its
    sides or everything lies outside (the object is not in this scene's plane)."""
    out = []
    for sh in shapes:
        if sh.kind == "disc":
            if sh.a - sh.c < 0 or sh.a + sh.c > width_m:
                return []
            out.append(sh)
        elif sh.c > 0 and sh.a < width_m:
            out.append(replace(sh, a=max(sh.a, 0.0), c=min(sh.c, width_m)))
    return out


def _fmt(v: float) -> str:
    return f"{v:.6g}"


def _shape_line(sh: Shape, dz: float) -> str:
    if sh.kind == "disc":
        a, b, r = _fmt(sh.a), _fmt(sh.b), _fmt(sh.c)
        return f"#cylinder: {a} {b} 0 {a} {b} {_fmt(dz)} {r} {sh.material}"
    return f"#box: {_fmt(sh.a)} {_fmt(sh.b)} 0 {_fmt(sh.c)} {_fmt(sh.d)} {_fmt(dz)} {sh.material}"


def soil_seed(scene_seed: int, salt: int) -> int:
    """A gprMax seed (31 bits) from the scene seed, one per use (fractal soil, surface...)."""
    return (scene_seed * 1_000_003 + salt * 7919 + 12345) % (2**31 - 1)


def _antennas(s: FdtdSettings) -> list[str]:
    lay = layout(s)
    dx = s.dx_m
    y = _fmt(lay.antenna_cell_y * dx)
    return [
        f"#waveform: ricker 1 {s.centre_hz:g} pulse",
        f"#hertzian_dipole: z {_fmt(lay.tx0_cell * dx)} {y} 0 pulse",
        f"#rx: {_fmt((lay.tx0_cell + lay.rx_offset_cells) * dx)} {y} 0",
        f"#src_steps: {_fmt(lay.step_cells * dx)} 0 0",
        f"#rx_steps: {_fmt(lay.step_cells * dx)} 0 0",
    ]


def _soil_lines(
    scene: Scene, s: FdtdSettings, X: float, ys: float, layer_top_m: float
) -> tuple[list[str], list[str]]:
    """(material lines, geometry lines) of the soil: Peplinski fractal boxes and a rough
    surface, or one homogeneous material with the soil's eps_r and sigma (flat surface).
    ``layer_top_m`` > 0: a wetter layer (the soil's layer_eps_r) below that height."""
    soil, dx = scene.soil, s.dx_m
    if s.soil_model == "homogeneous":
        mats = [
            f"soil {soil.name}: homogeneous, eps_r {soil.eps_r}, sigma {soil.sigma_s_m}",
            f"#material: {soil.eps_r:g} {soil.sigma_s_m:g} 1 0 soil_top",
        ]
        geom = [f"#box: 0 0 0 {_fmt(X)} {_fmt(ys)} {_fmt(dx)} soil_top"]
        if layer_top_m > 0:
            mats.append(f"#material: {soil.layer_eps_r:g} {soil.sigma_s_m:g} 1 0 soil_layer")
            geom.append(f"#box: 0 0 0 {_fmt(X)} {_fmt(layer_top_m)} {_fmt(dx)} soil_layer")
        return mats, geom
    tex = texture_of(soil)
    lo, hi = water_range(soil, s.water_spread)
    mats = [
        f"soil {soil.name}: eps_r {soil.eps_r}, texture sand {tex.sand} clay {tex.clay}",
        f"#soil_peplinski: {tex.sand:g} {tex.clay:g} {tex.bulk_density_g_cm3:g} 2.66 "
        f"{lo:.5f} {hi:.5f} soil_top",
    ]
    geom = []
    fd = s.fractal_dim
    if layer_top_m > 0:
        llo, lhi = water_range(soil, s.water_spread, eps_r=soil.layer_eps_r)
        mats.append(
            f"#soil_peplinski: {tex.sand:g} {tex.clay:g} {tex.bulk_density_g_cm3:g} 2.66 "
            f"{llo:.5f} {lhi:.5f} soil_layer"
        )
        geom.append(
            f"#fractal_box: 0 0 0 {_fmt(X)} {_fmt(layer_top_m)} {_fmt(dx)} {fd:g} 1 1 1 "
            f"{s.n_materials} soil_layer layer_box {soil_seed(scene.seed, 3)}"
        )
    geom.append(
        f"#fractal_box: 0 {_fmt(layer_top_m)} 0 {_fmt(X)} {_fmt(ys)} {_fmt(dx)} {fd:g} 1 1 1 "
        f"{s.n_materials} soil_top soil_box {soil_seed(scene.seed, 1)}"
    )
    if s.roughness and soil.roughness_m > 0:
        r = max(dx, round(2 * soil.roughness_m / dx) * dx)
        geom.append(
            f"#add_surface_roughness: 0 {_fmt(ys)} 0 {_fmt(X)} {_fmt(ys)} {_fmt(dx)} {fd:g} 1 1 "
            f"{_fmt(ys - r)} {_fmt(ys + r)} soil_box {soil_seed(scene.seed, 2)}"
        )
    return mats, geom


def scene_input(
    scene: Scene,
    s: FdtdSettings,
    scan_start_m: float,
    title: str = "detect scene",
    geometry_view: str | None = None,
    with_targets: bool = True,
    with_soil: bool = True,
) -> str:
    """gprMax input text of ``scene`` for a scan whose trace 0 lies at lane position
    ``scan_start_m``. ``geometry_view``: also write the geometry (VTKHDF) under that name.
    ``with_soil=False``: antennas in free space (the direct wave alone, a reference)."""
    lay = layout(s)
    dx = s.dx_m
    X, Y = lay.nx * dx, lay.ny * dx
    ys = lay.surface_m
    head = [
        f"#title: {title}",
        f"#domain: {_fmt(X)} {_fmt(Y)} {_fmt(dx)}",
        f"#dx_dy_dz: {_fmt(dx)} {_fmt(dx)} {_fmt(dx)}",
        f"#time_window: {s.time_window_ns * 1e-9:.6g}",
        f"#pml_cells: {s.pml_cells} {s.pml_cells} 0 {s.pml_cells} {s.pml_cells} 0",
        "",
    ]
    if not with_soil:
        return "\n".join([*head, "free space (no soil, no objects)", *_antennas(s)]) + "\n"
    layer = s.moisture_layer_m
    top_y0 = 0.0
    if layer is not None and layer < ys - s.pml_cells * dx:
        top_y0 = ys - round(layer / dx) * dx
    soil_mats, soil_geom = _soil_lines(scene, s, X, ys, top_y0)
    lines = [*head, *soil_mats]
    materials: dict[str, str] = {}
    shapes: list[Shape] = []
    if with_targets:
        for t in scene.targets:
            x = lay.x0_m + (t.x_m - scan_start_m)
            drawn = _in_domain(target_shapes(t, x, ys, dx), X)
            floor = s.pml_cells * dx
            if any((sh.b - sh.c if sh.kind == "disc" else sh.b) < floor for sh in drawn):
                raise ValueError(
                    f"scene {title}: object {t.id} ({t.kind.key}, depth {t.depth_m:.3f} m) "
                    f"reaches below the soil model; raise fdtd.soil_depth_m ({s.soil_depth_m})"
                )
            shapes += drawn
    for sh in shapes:
        if sh.material.startswith("eps") and sh.material not in materials:
            eps_txt, sig_txt = sh.material[3:].split("_sig")
            eps = float(eps_txt.replace("p", ".").replace("m", "-"))
            sig = float(sig_txt.replace("p", ".").replace("m", "-"))
            materials[sh.material] = f"#material: {eps:g} {sig:g} 1 0 {sh.material}"
    lines += list(materials.values())
    lines += ["", *_antennas(s), ""]
    lines += soil_geom
    lines += [_shape_line(sh, dx) for sh in shapes]
    if geometry_view:
        lines.append(
            f"#geometry_view: 0 0 0 {_fmt(X)} {_fmt(Y)} {_fmt(dx)} {_fmt(dx)} {_fmt(dx)} "
            f"{_fmt(dx)} {geometry_view} n"
        )
    return "\n".join(lines) + "\n"


def scan_truth(scene: Scene, s: FdtdSettings, scan_start_m: float) -> list[dict[str, Any]]:
    """Truth rows of the objects the 2-D plane holds, ``x_m`` along the scan (trace 0 = 0)."""
    lay = layout(s)
    rows = []
    for t in scene.targets:
        x = lay.x0_m + (t.x_m - scan_start_m)
        if _in_domain(target_shapes(t, x, lay.surface_m, s.dx_m), lay.nx * s.dx_m):
            rows.append(t.truth(scene.soil.name, -scan_start_m))
    return rows
