"""Random choices that depend on row values, never on row positions.

Initialisation draws rows at random (seeds) or random responsibilities. Each
row gets a 64-bit fingerprint of its values, standardised per feature and
rounded to a grid of ``2**-20`` standard deviations; a random draw hashes the
fingerprint together with a stream number taken from the user's
``random_state``. Rows with equal fingerprints are grouped and their weights
added. Consequently the draws do not change when the rows are shuffled, when
a row is repeated instead of given weight 2, when rows of weight 0 are added,
or when a feature is shifted or rescaled (a value would have to fall within
rounding error of a grid line, about 1e-10 per value, to change a
fingerprint).

Weighted draws use exponential races (Efraimidis & Spirakis 2006): group
``g`` with score ``s_g`` gets key ``log(u_g) / s_g`` with ``u_g`` uniform on
(0, 1); the largest key wins with probability ``s_g / sum(s)``, and the ``m``
largest keys are a weighted sample of ``m`` distinct groups without
replacement. Groups of score 0 never win.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from gaussmix._compiled import compiled
from gaussmix.em import _sampling_loop

_GOLDEN = np.uint64(0x9E3779B97F4A7C15)
_M1 = np.uint64(0xBF58476D1CE4E5B9)
_M2 = np.uint64(0x94D049BB133111EB)
_S30, _S27, _S31, _S11 = (np.uint64(s) for s in (30, 27, 31, 11))


def _mix(z: np.ndarray) -> np.ndarray:
    """SplitMix64's finaliser: a bijection of uint64 that scrambles all bits."""
    z = z ^ (z >> _S30)
    z = z * _M1
    z = z ^ (z >> _S27)
    z = z * _M2
    return z ^ (z >> _S31)


_MASK = (1 << 64) - 1


def _mix_int(z: int) -> int:
    """:func:`_mix` of one number, as a Python integer (``0 <= z < 2**64``)."""
    z ^= z >> 30
    z = (z * int(_M1)) & _MASK
    z ^= z >> 27
    z = (z * int(_M2)) & _MASK
    return z ^ (z >> 31)


GRID_BITS = 20
#: Rows of more features than this are hashed block by block.
WIDE_ROWS = 64


def fingerprints(rows: np.ndarray, center: np.ndarray, scale: np.ndarray) -> np.ndarray:
    """A uint64 fingerprint of each row's standardised, rounded values.

    ``center`` and ``scale`` (per feature) are the data's weighted mean and
    standard deviation (1 where it is 0).
    """
    rows = np.asarray(rows, dtype=np.float64)
    wide = rows.shape[1] > WIDE_ROWS
    with np.errstate(over="ignore"):
        salts = _mix(np.arange(1, rows.shape[1] + 1, dtype=np.uint64) * _GOLDEN) if wide else np.empty(0, np.uint64)
    limit = 2.0**62
    loop = compiled(_sampling_loop.fingerprints)
    if loop is not None:  # the same numbers in one pass over the rows
        out = np.empty(rows.shape[0], dtype=np.uint64)
        loop(np.ascontiguousarray(rows), np.ascontiguousarray(center, dtype=np.float64),
             np.ascontiguousarray(scale, dtype=np.float64), 2.0**GRID_BITS, limit, salts, WIDE_ROWS, out)
        return out
    standard = (rows - center) / scale
    grid = np.clip(np.rint(standard * 2.0**GRID_BITS), -limit, limit).astype(np.int64)
    bits = grid.view(np.uint64)
    h = np.full(grid.shape[0], _GOLDEN, dtype=np.uint64)
    with np.errstate(over="ignore"):
        if not wide:
            for j in range(grid.shape[1]):
                h = _mix(h + bits[:, j] + _GOLDEN)
            return h
        # Wide rows: each value is mixed with its position, a block's mixes are summed, and the blocks
        # are chained; a few hundred array operations instead of one chain step per feature.
        for start in range(0, grid.shape[1], WIDE_ROWS):
            block = _mix(bits[:, start : start + WIDE_ROWS] + salts[start : start + WIDE_ROWS])
            h = _mix(h + np.sum(block, axis=1, dtype=np.uint64) + _GOLDEN)
    return h


def uniforms(prints: np.ndarray, stream: int) -> np.ndarray:
    """Uniform numbers on (0, 1), one per fingerprint, for a stream number."""
    key = _mix_int((stream + int(_GOLDEN)) & _MASK)
    loop = compiled(_sampling_loop.uniforms)
    if loop is not None:  # the same numbers in one pass
        out = np.empty(prints.shape[0])
        loop(np.ascontiguousarray(prints, dtype=np.uint64), np.uint64(key), out)
        return out
    with np.errstate(over="ignore"):
        z = _mix(prints ^ np.uint64(key))
    return ((z >> _S11).astype(np.float64) + 0.5) * 2.0**-53


def new_stream(rng: np.random.RandomState) -> int:
    """A stream number drawn from the user's random state."""
    return int(rng.randint(0, np.iinfo(np.int64).max, dtype=np.int64))


@dataclass(frozen=True)
class RowGroups:
    """Rows grouped by value.

    ``prints[g]`` is group ``g``'s fingerprint, ``weight[g]`` the total
    weight of its rows, ``representative[g]`` the index of one of its rows
    and ``group_of_row[i]`` the group of row ``i``.
    """

    prints: np.ndarray
    weight: np.ndarray
    representative: np.ndarray
    group_of_row: np.ndarray

    @classmethod
    def from_fingerprints(cls, prints: np.ndarray, weights: np.ndarray) -> RowGroups:
        unique, first, inverse = np.unique(prints, return_index=True, return_inverse=True)
        return cls(
            prints=unique,
            weight=np.bincount(inverse, weights=weights, minlength=unique.size),
            representative=first,
            group_of_row=inverse,
        )

    def keys(self, scores: np.ndarray, stream: int) -> np.ndarray:
        """Race keys ``log(u) / score``; ``-inf`` where the score is 0."""
        logs = np.log(uniforms(self.prints, stream))  # negative: u < 1, so a score of 0 gives -inf
        with np.errstate(divide="ignore"):
            return logs / scores

    def draw(self, scores: np.ndarray, stream: int) -> int | None:
        """One group drawn with probability proportional to ``scores``; None if all are 0."""
        keys = self.keys(scores, stream)
        best = int(np.argmax(keys))
        return best if np.isfinite(keys[best]) else None

    def draw_distinct(self, scores: np.ndarray, count: int, stream: int) -> np.ndarray:
        """Up to ``count`` distinct groups, a weighted sample without replacement, in draw order."""
        keys = self.keys(scores, stream)
        loop = compiled(_sampling_loop.largest_keys)
        if loop is not None and count > 0:  # the same choice in one pass
            chosen = np.empty(count, dtype=np.intp)
            return chosen[:loop(keys, self.prints, count, chosen)]
        candidates = np.arange(keys.shape[0])
        if count < keys.shape[0]:  # only keys at least the count-th largest can be chosen
            candidates = np.flatnonzero(keys >= np.partition(keys, keys.shape[0] - count)[keys.shape[0] - count])
        order = candidates[np.lexsort((self.prints[candidates], -keys[candidates]))]  # largest first; ties by value
        chosen = order[:count]
        return chosen[np.isfinite(keys[chosen])]


def heaviest_keys(
    chunks, size: int, stream: int, prints_of
) -> np.ndarray:
    """Indices of ``size`` rows drawn with probability proportional to their weight, without replacement.

    Streams over ``chunks`` (``(start, stop, X_chunk, weights or None)``)
    keeping the ``size`` largest race keys ``log(u) / w``, with ``u`` from
    each row's fingerprint (``prints_of(X_chunk)``), so memory is O(size).
    Rows of weight 0 are never drawn and the draw does not depend on row
    order; unlike :class:`RowGroups`, repeated rows are not merged.
    """
    keys, rows = top_keys(chunks, size, stream, prints_of)
    return np.sort(rows)


def top_keys(chunks, size: int, stream: int, prints_of) -> tuple[np.ndarray, np.ndarray]:
    """The ``size`` largest finite race keys of the rows in ``chunks`` and their row indices.

    Results for disjoint parts of the data merge with :func:`merge_keys`
    into the result for their union (the draw of :func:`heaviest_keys`).
    """
    best_keys = np.empty(0)
    best_rows = np.empty(0, dtype=np.int64)
    for start, stop, X_chunk, weights in chunks:
        u = uniforms(prints_of(X_chunk), stream)
        w = np.ones(stop - start) if weights is None else np.asarray(weights, dtype=np.float64)
        with np.errstate(divide="ignore"):
            keys = np.where(w > 0, np.log(u) / np.where(w > 0, w, 1.0), -np.inf)
        best_keys, best_rows = merge_keys(
            [(best_keys, best_rows), (keys, np.arange(start, stop, dtype=np.int64))], size
        )
    return best_keys, best_rows


def merge_keys(parts, size: int) -> tuple[np.ndarray, np.ndarray]:
    """The ``size`` largest finite keys among ``parts`` (pairs of keys and row indices)."""
    keys = np.concatenate([p[0] for p in parts])
    rows = np.concatenate([p[1] for p in parts])
    finite = np.isfinite(keys)
    keys, rows = keys[finite], rows[finite]
    if keys.size > size:
        keep = np.argpartition(-keys, size - 1)[:size]
        keys, rows = keys[keep], rows[keep]
    return keys, rows
