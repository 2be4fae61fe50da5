"""The engine: the pipeline as its data flow, built from the config, fed and closed out."""
