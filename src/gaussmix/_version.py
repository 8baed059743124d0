"""The version of gaussmix (read by model files and the command line without importing the package's API)."""

__version__ = "0.1.0"
