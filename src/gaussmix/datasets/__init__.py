"""Data sets: Old Faithful (shipped with the package) and synthetic mixtures."""

from gaussmix.datasets._faithful import load_faithful
from gaussmix.datasets._synthetic import make_mixture

__all__ = ["load_faithful", "make_mixture"]
