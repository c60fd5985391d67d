"""The package's version, in a module of its own: the HTTP handler's Server header and the
CLI read it without importing the package from inside it."""

__version__ = "0.1.0"
