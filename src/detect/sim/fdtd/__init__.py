"""Full-wave (FDTD, gprMax) scenes from the project's own scene model.

``settings`` (the ``fdtd`` config group as a frozen dataclass), ``soils`` (our soils as
Peplinski mixtures), ``scene_to_gprmax`` (a scene as gprMax input text), ``run`` (one
scene: solve, merge, convert, cached by hash), ``scenes`` (a seeded validation set) and
``farm`` (many scenes on local processes or a Dask cluster). gprMax and Dask are an
optional extra (``pip install -e .[fdtd]``); only ``run`` and ``farm`` import them, inside
functions, so the rest works (and writes ``.in`` files) without them.
"""
