"""Version of the core distribution."""

__version__ = "0.1.0"
