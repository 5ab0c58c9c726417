"""mlc.compiler: load, validate, resolve and emit the artifacts of one mlproject.yaml."""

__version__ = "0.1.0"
