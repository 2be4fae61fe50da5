"""Hardware drivers, installed as ``detect.drivers``; one module per device family.

Nothing in ``detect`` imports these directly: the source registry loads a driver
when a config names it.
"""
