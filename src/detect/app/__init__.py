"""The commands: one module per command, the only layer that sees the raw Hydra config,
``TaskError`` and exit codes."""
