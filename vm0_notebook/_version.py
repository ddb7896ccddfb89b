"""The package version, read by the build and by ``vm0_notebook.__version__``."""

__version__ = "0.1.0"
