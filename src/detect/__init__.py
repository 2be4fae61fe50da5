"""detect: sensor-fusion landmine detection (GPR + metal detector + GPS)."""

__version__ = "0.1.0"
