"""The package version, in a leaf module: modules below the public API (the session
writer records it) import it from here, not from ``detect`` (whose ``__init__`` is the API)."""

__version__ = "0.1.0"
