"""A scene of :mod:`detect.sim.scene` as a gprMax input file (text): 2-D TMz or 3-D.

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

``mode: 3d`` models the same scene in a volume: ``z`` across the track, ``cross_track_m``
of soil centred on the scan line plus the PML on both sides, the antennas (still
z-polarised, across the track) on the centre line. Each object is its body
(:func:`target_solids`): a mine is a vertical ``#cylinder`` of case material with fill, air
gap and metal part inside, a rod a cylinder along its own axis, a blob a ``#sphere``, a
brick a ``#box``; an object off the scan line sits ``y_m`` off the centre in z, whole. The
soil's fractal box and rough surface span the z extent as well.

Seeds of the soil and surface come from the scene's seed only, so a scene and its
empty-soil twin (same seed, no objects) differ only by the objects.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from typing import Any

from detect.sim.fdtd.settings import C0_M_S, FdtdSettings
from detect.sim.fdtd.soils import texture_of, water_range
from detect.sim.scene import PlacedTarget, Scene
from detect.sim.targets import TargetKind

#: explosive fill (TNT / RDX mixtures: eps 2.7-3.2, lossless at GPR frequencies)
FILL_EPS = 2.9
#: mine case wall thickness
WALL_M = 0.003
#: air gap under a pressure mine's top, as a share of its height
AIR_GAP_FRAC = 0.12
#: conductivity of water-bearing non-metal bodies (roots: eps ~20)
WET_SIGMA_S_M = 0.05
MINE_CLASSES = ("ap_mine", "at_mine")

Point = tuple[float, float, float]


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
class Solid:
    """A 3-D primitive in domain metres (x along track, y up, z across): a box (corners
    ``p1`` < ``p2``), a cylinder (face centres ``p1``, ``p2``, radius ``r``) or a sphere
    (centre ``p1``, radius ``r``)."""

    kind: str  # "box" | "cylinder" | "sphere"
    material: str
    p1: Point
    p2: Point = (0.0, 0.0, 0.0)
    r: float = 0.0

    def bounds(self) -> tuple[Point, Point]:
        """Lower and upper corner of the bounding box."""
        if self.kind == "box":
            return self.p1, self.p2
        if self.kind == "sphere":
            lo = tuple(c - self.r for c in self.p1)
            hi = tuple(c + self.r for c in self.p1)
            return (lo[0], lo[1], lo[2]), (hi[0], hi[1], hi[2])
        d = [b - a for a, b in zip(self.p1, self.p2, strict=True)]
        n = math.sqrt(sum(v * v for v in d))
        rim = [self.r * math.sqrt(max(0.0, 1.0 - (v / n) ** 2)) for v in d]
        lo3 = [min(a, b) - e for a, b, e in zip(self.p1, self.p2, rim, strict=True)]
        hi3 = [max(a, b) + e for a, b, e in zip(self.p1, self.p2, rim, strict=True)]
        return (lo3[0], lo3[1], lo3[2]), (hi3[0], hi3[1], hi3[2])


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
    nz: int = 1  # 2-D: one cell
    antenna_cell_z: int = 0  # z cell of the scan line (3-D: the centre)

    @property
    def x0_m(self) -> float:
        """Domain x of trace 0 (midpoint of transmitter and receiver)."""
        return (self.tx0_cell + 0.5 * self.rx_offset_cells) * self.dx_m

    @property
    def surface_m(self) -> float:
        return self.surface_cell * self.dx_m

    @property
    def line_z_m(self) -> float:
        """Domain z of the scan line (objects at lateral offset 0)."""
        return self.antenna_cell_z * self.dx_m


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
    nz, line_z = 1, 0
    if s.mode == "3d":
        line_z = s.pml_cells + max(1, round(0.5 * s.cross_track_m / dx))
        nz = 2 * line_z
    return Layout(nx, ny, surface, tx0, off, s.step_cells, ant, dx, nz, line_z)


def solver_cost(s: FdtdSettings) -> dict[str, float]:
    """Size of the job gprMax solves: cells, time steps per A-scan (at the Courant limit
    of the mode) and their product over the whole B-scan (run time scales with it)."""
    lay = layout(s)
    dims = 3 if s.mode == "3d" else 2
    dt_s = s.dx_m / (C0_M_S * math.sqrt(dims))
    steps = math.ceil(s.time_window_ns * 1e-9 / dt_s) + 1
    cells = lay.nx * lay.ny * lay.nz
    return {"cells": cells, "steps": steps, "cell_steps": float(cells) * steps * s.n_traces}


def _material_name(eps: float, sigma: float) -> str:
    return f"eps{eps:g}_sig{sigma:g}".replace(".", "p").replace("-", "m")


def _body_material(k: TargetKind) -> str:
    if k.eps_body is None:
        return "pec"
    if k.eps_body <= 1.0:
        return "free_space"
    sigma = WET_SIGMA_S_M if k.eps_body >= 15 else 0.0
    return _material_name(k.eps_body, sigma)


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
    mat = _body_material(k)
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


def target_solids(
    t: PlacedTarget, x_m: float, z_m: float, surface_m: float, dx_m: float
) -> list[Solid]:
    """The 3-D body of ``t`` centred at domain (``x_m``, ``z_m``), its top ``depth_m``
    below the surface ``surface_m``, drawn in order (later solids overwrite earlier ones).
    Sizes as :func:`target_shapes` on the scan line: nothing thinner than a cell, a blob a
    sphere of its mean diameter sqrt(diameter x height)."""
    k = t.kind
    top = surface_m - t.depth_m
    mat = _body_material(k)
    snap = lambda m: max(dx_m, m)  # noqa: E731
    if k.shape == "rod":
        return [_rod_solid(t, (x_m, top, z_m), dx_m, mat)]
    if k.shape == "blob":
        r = snap(0.5 * math.sqrt(snap(t.diameter_m) * snap(t.height_m)))
        return [Solid("sphere", mat, (x_m, top - r, z_m), r=r)]
    r, h = 0.5 * snap(t.diameter_m), snap(t.height_m)
    if k.shape == "box":
        return [Solid("box", mat, (x_m - r, top - h, z_m - r), (x_m + r, top, z_m + r))]
    return _disc_solids(t, (x_m, top, z_m), dx_m, mat)


def _rod_solid(t: PlacedTarget, top_centre: Point, dx_m: float, mat: str) -> Solid:
    """A cylinder along ``t.axis`` (scene frame: along track, across, up; here x, z, y)
    whose highest point (the rim of its upper face) lies at the top."""
    along, across, up = (float(a) for a in t.axis)
    norm = math.sqrt(along * along + across * across + up * up)
    u = (along / norm, up / norm, across / norm) if norm > 0 else (0.0, 1.0, 0.0)
    if u[1] < 0:
        u = (-u[0], -u[1], -u[2])
    r = max(dx_m, 0.5 * t.diameter_m)
    length = max(2 * dx_m, t.height_m)
    x, top, z = top_centre
    centre = (x, top - 0.5 * length * u[1] - r * math.sqrt(max(0.0, 1.0 - u[1] ** 2)), z)
    p1 = tuple(c - 0.5 * length * v for c, v in zip(centre, u, strict=True))
    p2 = tuple(c + 0.5 * length * v for c, v in zip(centre, u, strict=True))
    return Solid("cylinder", mat, (p1[0], p1[1], p1[2]), (p2[0], p2[1], p2[2]), r)


def _disc_solids(t: PlacedTarget, top_centre: Point, dx_m: float, mat: str) -> list[Solid]:
    """A flat-lying body (vertical axis); a mine with its fill, air gap and metal part
    inside the case, sized as :func:`target_shapes` sizes them on the scan line."""
    k = t.kind
    x, top, z = top_centre
    snap = lambda m: max(dx_m, m)  # noqa: E731
    r, h = 0.5 * snap(t.diameter_m), snap(t.height_m)
    bottom = top - h

    def disc(y0: float, y1: float, radius: float, material: str) -> Solid:
        return Solid("cylinder", material, (x, y0, z), (x, y1, z), radius)

    solids = [disc(bottom, top, r, mat)]
    if k.cls not in MINE_CLASSES or k.eps_body is None:
        return solids
    wall = snap(WALL_M)
    if 2 * r > 2 * wall + dx_m and h > 2 * wall + dx_m:
        solids.append(disc(bottom + wall, top - wall, r - wall, _material_name(FILL_EPS, 0.0)))
        if k.cls == "ap_mine":
            gap = snap(AIR_GAP_FRAC * h)
            inset = 0.1 * 2 * r
            solids.append(disc(top - wall - gap, top - wall, r - wall - inset, "free_space"))
    if t.metal_mass_g > 0 and k.metal_scale_m > 0:
        m = snap(2 * k.metal_scale_m)
        my = top - k.metal_depth_frac * h - wall
        my = min(max(my, bottom + wall + m), top - wall)
        solids.append(_cell_box("pec", (x, my - 0.5 * m, z), m, dx_m))
    return solids


def _cell_box(material: str, centre: Point, size_m: float, dx_m: float) -> Solid:
    """A cube of whole cells (at least one) nearest to ``size_m`` around ``centre``: a
    part this small must not round away to nothing."""
    n = max(1, round(size_m / dx_m))
    x0, y0, z0 = (round(c / dx_m - 0.5 * n) * dx_m for c in centre)
    side = n * dx_m
    return Solid("box", material, (x0, y0, z0), (x0 + side, y0 + side, z0 + side))


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


def _in_volume(solids: list[Solid], width_m: float, depth_m: float, dx_m: float) -> list[Solid]:
    """The solids that reach into the domain's x-z extent (boxes clipped to it); none when
    the object's outer solid does not (the object lies outside this scene). gprMax clips
    cylinders and spheres itself; it refuses boxes outside the domain and solids that
    occupy no cell, so a cylinder's axis or a sphere's centre region must reach inside."""
    out = []
    for i, sol in enumerate(solids):
        kept = _reach(sol, width_m, depth_m, dx_m)
        if kept is None and i == 0:
            return []
        if kept is not None:
            out.append(kept)
    return out


def _reach(sol: Solid, width_m: float, depth_m: float, dx_m: float) -> Solid | None:
    if sol.kind == "box":
        lo = (max(sol.p1[0], 0.0), sol.p1[1], max(sol.p1[2], 0.0))
        hi = (min(sol.p2[0], width_m), sol.p2[1], min(sol.p2[2], depth_m))
        inside = hi[0] - lo[0] >= dx_m and hi[2] - lo[2] >= dx_m
        return replace(sol, p1=lo, p2=hi) if inside else None
    if sol.kind == "sphere":
        cx, _, cz = sol.p1
        gap = math.hypot(max(0.0, -cx, cx - width_m), max(0.0, -cz, cz - depth_m))
        return sol if gap <= sol.r - dx_m else None
    return sol if _segment_meets(sol.p1, sol.p2, width_m, depth_m) else None


def _segment_meets(p1: Point, p2: Point, width_m: float, depth_m: float) -> bool:
    """Whether the segment p1-p2 meets [0, width] x [0, depth] in x and z (Liang-Barsky)."""
    t0, t1 = 0.0, 1.0
    for a, b, hi in ((p1[0], p2[0], width_m), (p1[2], p2[2], depth_m)):
        d = b - a
        if abs(d) < 1e-15:
            if a < 0 or a > hi:
                return False
            continue
        lo_t, hi_t = sorted(((0 - a) / d, (hi - a) / d))
        t0, t1 = max(t0, lo_t), min(t1, hi_t)
    return t0 <= t1


def _fmt(v: float) -> str:
    return f"{v:.6g}"


def _shape_line(sh: Shape, dz: float) -> str:
    if sh.kind == "disc":
        a, b, r = _fmt(sh.a), _fmt(sh.b), _fmt(sh.c)
        return f"#cylinder: {a} {b} 0 {a} {b} {_fmt(dz)} {r} {sh.material}"
    return f"#box: {_fmt(sh.a)} {_fmt(sh.b)} 0 {_fmt(sh.c)} {_fmt(sh.d)} {_fmt(dz)} {sh.material}"


def _point(p: Point) -> str:
    return " ".join(_fmt(v) for v in p)


def _solid_line(sol: Solid) -> str:
    if sol.kind == "box":
        return f"#box: {_point(sol.p1)} {_point(sol.p2)} {sol.material}"
    if sol.kind == "sphere":
        return f"#sphere: {_point(sol.p1)} {_fmt(sol.r)} {sol.material}"
    return f"#cylinder: {_point(sol.p1)} {_point(sol.p2)} {_fmt(sol.r)} {sol.material}"


def soil_seed(scene_seed: int, salt: int) -> int:
    """A gprMax seed (31 bits) from the scene seed, one per use (fractal soil, surface...)."""
    return (scene_seed * 1_000_003 + salt * 7919 + 12345) % (2**31 - 1)


def _antennas(s: FdtdSettings) -> list[str]:
    lay = layout(s)
    dx = s.dx_m
    y, z = _fmt(lay.antenna_cell_y * dx), _fmt(lay.line_z_m)
    return [
        f"#waveform: ricker 1 {s.centre_hz:g} pulse",
        f"#hertzian_dipole: z {_fmt(lay.tx0_cell * dx)} {y} {z} pulse",
        f"#rx: {_fmt((lay.tx0_cell + lay.rx_offset_cells) * dx)} {y} {z}",
        f"#src_steps: {_fmt(lay.step_cells * dx)} 0 0",
        f"#rx_steps: {_fmt(lay.step_cells * dx)} 0 0",
    ]


def _soil_lines(
    scene: Scene, s: FdtdSettings, X: float, ys: float, layer_top_m: float, Z: float
) -> tuple[list[str], list[str]]:
    """(material lines, geometry lines) of the soil over the domain's width ``X`` and z
    extent ``Z``: Peplinski fractal boxes and a rough surface, or one homogeneous material
    with the soil's eps_r and sigma (flat surface). ``layer_top_m`` > 0: a wetter layer
    (the soil's layer_eps_r) below that height."""
    soil, dx, z = scene.soil, s.dx_m, _fmt(Z)
    if s.soil_model == "homogeneous":
        mats = [
            f"soil {soil.name}: homogeneous, eps_r {soil.eps_r}, sigma {soil.sigma_s_m}",
            f"#material: {soil.eps_r:g} {soil.sigma_s_m:g} 1 0 soil_top",
        ]
        geom = [f"#box: 0 0 0 {_fmt(X)} {_fmt(ys)} {z} soil_top"]
        if layer_top_m > 0:
            mats.append(f"#material: {soil.layer_eps_r:g} {soil.sigma_s_m:g} 1 0 soil_layer")
            geom.append(f"#box: 0 0 0 {_fmt(X)} {_fmt(layer_top_m)} {z} soil_layer")
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
            f"#fractal_box: 0 0 0 {_fmt(X)} {_fmt(layer_top_m)} {z} {fd:g} 1 1 1 "
            f"{s.n_materials} soil_layer layer_box {soil_seed(scene.seed, 3)}"
        )
    geom.append(
        f"#fractal_box: 0 {_fmt(layer_top_m)} 0 {_fmt(X)} {_fmt(ys)} {z} {fd:g} 1 1 1 "
        f"{s.n_materials} soil_top soil_box {soil_seed(scene.seed, 1)}"
    )
    if s.roughness and soil.roughness_m > 0:
        r = max(dx, round(2 * soil.roughness_m / dx) * dx)
        geom.append(
            f"#add_surface_roughness: 0 {_fmt(ys)} 0 {_fmt(X)} {_fmt(ys)} {z} {fd:g} 1 1 "
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
    X, Y, Z = lay.nx * dx, lay.ny * dx, lay.nz * dx
    ys = lay.surface_m
    p, pz = s.pml_cells, s.pml_cells if s.mode == "3d" else 0
    head = [
        f"#title: {title}",
        f"#domain: {_fmt(X)} {_fmt(Y)} {_fmt(Z)}",
        f"#dx_dy_dz: {_fmt(dx)} {_fmt(dx)} {_fmt(dx)}",
        f"#time_window: {s.time_window_ns * 1e-9:.6g}",
        f"#pml_cells: {p} {p} {pz} {p} {p} {pz}",
        "",
    ]
    if not with_soil:
        return "\n".join([*head, "free space (no soil, no objects)", *_antennas(s)]) + "\n"
    layer = s.moisture_layer_m
    top_y0 = 0.0
    if layer is not None and layer < ys - s.pml_cells * dx:
        top_y0 = ys - round(layer / dx) * dx
    soil_mats, soil_geom = _soil_lines(scene, s, X, ys, top_y0, Z)
    targets = scene.targets if with_targets else ()
    if s.mode == "3d":
        solids = [sol for t in targets for sol in _drawn_solids(t, s, scan_start_m, title)]
        names, objects = [sol.material for sol in solids], [_solid_line(sol) for sol in solids]
    else:
        shapes = [sh for t in targets for sh in _drawn_shapes(t, s, scan_start_m, title)]
        names, objects = [sh.material for sh in shapes], [_shape_line(sh, dx) for sh in shapes]
    lines = [*head, *soil_mats, *_material_lines(names)]
    lines += ["", *_antennas(s), ""]
    lines += soil_geom
    lines += objects
    if geometry_view:
        lines.append(
            f"#geometry_view: 0 0 0 {_fmt(X)} {_fmt(Y)} {_fmt(Z)} {_fmt(dx)} {_fmt(dx)} "
            f"{_fmt(dx)} {geometry_view} n"
        )
    return "\n".join(lines) + "\n"


def _material_lines(names: list[str]) -> list[str]:
    """``#material`` lines of the ``eps..._sig...`` names, once each, in order of use."""
    materials: dict[str, str] = {}
    for name in names:
        if name.startswith("eps") and name not in materials:
            eps_txt, sig_txt = name[3:].split("_sig")
            eps = float(eps_txt.replace("p", ".").replace("m", "-"))
            sig = float(sig_txt.replace("p", ".").replace("m", "-"))
            materials[name] = f"#material: {eps:g} {sig:g} 1 0 {name}"
    return list(materials.values())


def _placed_shapes(t: PlacedTarget, s: FdtdSettings, scan_start_m: float) -> list[Shape]:
    """The 2-D cross-section of ``t`` that lies in the domain (none: not in the plane)."""
    lay = layout(s)
    x = lay.x0_m + (t.x_m - scan_start_m)
    return _in_domain(target_shapes(t, x, lay.surface_m, s.dx_m), lay.nx * s.dx_m)


def _placed_solids(t: PlacedTarget, s: FdtdSettings, scan_start_m: float) -> list[Solid]:
    """The 3-D body of ``t`` that lies in the domain, ``y_m`` off the scan line in z."""
    lay = layout(s)
    x = lay.x0_m + (t.x_m - scan_start_m)
    solids = target_solids(t, x, lay.line_z_m + t.y_m, lay.surface_m, s.dx_m)
    return _in_volume(solids, lay.nx * s.dx_m, lay.nz * s.dx_m, s.dx_m)


def lowest_m(t: PlacedTarget, s: FdtdSettings, scan_start_m: float = 0.0) -> float:
    """Domain y of the lowest point of ``t`` as drawn in this mode (inf: not drawn); below
    ``pml_cells * dx_m`` it would reach into the PML under the soil."""
    if s.mode == "3d":
        return min(
            (sol.bounds()[0][1] for sol in _placed_solids(t, s, scan_start_m)), default=math.inf
        )
    drawn = _placed_shapes(t, s, scan_start_m)
    return min((sh.b - sh.c if sh.kind == "disc" else sh.b for sh in drawn), default=math.inf)


def _drawn_shapes(t: PlacedTarget, s: FdtdSettings, scan_start_m: float, title: str) -> list[Shape]:
    _check_floor(t, s, lowest_m(t, s, scan_start_m), title)
    return _placed_shapes(t, s, scan_start_m)


def _drawn_solids(t: PlacedTarget, s: FdtdSettings, scan_start_m: float, title: str) -> list[Solid]:
    _check_floor(t, s, lowest_m(t, s, scan_start_m), title)
    return _placed_solids(t, s, scan_start_m)


def _check_floor(t: PlacedTarget, s: FdtdSettings, lowest_m: float, title: str) -> None:
    if lowest_m < s.pml_cells * s.dx_m:
        raise ValueError(
            f"scene {title}: object {t.id} ({t.kind.key}, depth {t.depth_m:.3f} m) "
            f"reaches below the soil model; raise fdtd.soil_depth_m ({s.soil_depth_m})"
        )


def scan_truth(scene: Scene, s: FdtdSettings, scan_start_m: float) -> list[dict[str, Any]]:
    """Truth rows of the objects the model holds (2-D: those crossing the plane; 3-D:
    those inside the volume), ``x_m`` along the scan (trace 0 = 0)."""
    placed = _placed_solids if s.mode == "3d" else _placed_shapes
    return [
        t.truth(scene.soil.name, -scan_start_m) for t in scene.targets if placed(t, s, scan_start_m)
    ]
