"""The command line: thin typer wrappers over :mod:`qxai.pipeline`."""
