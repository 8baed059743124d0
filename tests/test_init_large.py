"""Initialisation on data larger than the k-means subsample."""

import numpy as np
import pytest

import gaussmix.em.init as init_module
from gaussmix import GaussianMixture
from gaussmix.datasets import make_mixture
from gaussmix.em.sampling import heaviest_keys
from gaussmix.engines._chunked import ChunkedData


@pytest.fixture
def large(monkeypatch):
    monkeypatch.setattr(init_module, "INIT_SAMPLE_ROWS", 500)  # make 3,000 rows "large"
    X, y = make_mixture(3000, [0.5, 0.3, 0.2], [[0, 0], [6, 4], [-2, 7]], [np.eye(2)] * 3, random_state=0)
    return X, y


def test_subsample_draws_follow_the_weights():
    rng = np.random.RandomState(0)
    X = rng.normal(size=(400, 2))
    weights = np.r_[np.full(200, 1.0), np.full(100, 3.0), np.zeros(100)]
    data = ChunkedData(X, weights, chunk_rows=64)
    heavy = []
    for stream in range(300):
        rows = heaviest_keys(data.chunks(1), 20, stream, data.fingerprints)
        assert rows.size == 20 and np.all(rows < 300)  # weight 0 is never drawn
        heavy.append(np.mean(rows >= 200))
    # With 200 rows of weight 1 and 100 of weight 3, a single draw is heavy with probability 0.6;
    # sampling 20 without replacement keeps the share close to it.
    assert np.mean(heavy) == pytest.approx(0.6, abs=0.03)


def test_subsample_does_not_depend_on_row_order():
    rng = np.random.RandomState(1)
    X = rng.normal(size=(500, 3))
    order = rng.permutation(500)
    a = ChunkedData(X, chunk_rows=37)
    b = ChunkedData(X[order], chunk_rows=53)
    rows_a = heaviest_keys(a.chunks(1), 50, 7, a.fingerprints)
    rows_b = heaviest_keys(b.chunks(1), 50, 7, b.fingerprints)
    np.testing.assert_array_equal(np.sort(order[rows_b]), rows_a)


@pytest.mark.parametrize("init", ["kmeans", "k-means++", "random_from_data"])
def test_large_data_fit_is_good_and_order_free(large, init):
    X, y = large
    gm = GaussianMixture(3, init_params=init, random_state=0).fit(X)
    labels = gm.predict(X)
    assert len({(a, b) for a, b in zip(y, labels)}) == 3  # the three clusters, up to numbering
    order = np.random.RandomState(2).permutation(len(X))
    shuffled = GaussianMixture(3, init_params=init, random_state=0).fit(X[order])
    np.testing.assert_allclose(shuffled.means_, gm.means_, rtol=1e-8)
    weights = np.r_[np.ones(len(X)), np.zeros(200)]
    padded = np.vstack([X, np.random.RandomState(3).normal(50, 1, (200, 2))])
    with_zeros = GaussianMixture(3, init_params=init, random_state=0).fit(padded, sample_weight=weights)
    np.testing.assert_allclose(with_zeros.means_, gm.means_, rtol=1e-8)


def test_wide_rows_get_value_fingerprints_in_blocks():
    """Rows of more than 64 features are hashed block by block: still a function of the values alone."""
    from gaussmix.em.sampling import fingerprints

    rng = np.random.RandomState(0)
    X = rng.normal(size=(40, 200))
    X[7] = X[3]  # a duplicate row
    mean, scale = X.mean(axis=0), X.std(axis=0)
    prints = fingerprints(X, mean, scale)
    order = rng.permutation(40)
    np.testing.assert_array_equal(fingerprints(X[order], mean, scale), prints[order])
    assert prints[7] == prints[3] and len(set(prints.tolist())) == 39
    swapped = X.copy()
    swapped[:, [0, 1]] = swapped[:, [1, 0]]  # the position of a value matters
    assert not np.any(fingerprints(swapped, mean[[1, 0, *range(2, 200)]], scale[[1, 0, *range(2, 200)]]) == prints)


@pytest.mark.parametrize("enabled", [True, False])
def test_uniforms_and_weighted_draws_are_the_same_with_or_without_the_compiled_loops(monkeypatch, enabled):
    """The compiled draws (one pass each) give the NumPy path's numbers bit for bit and its choices, ties
    of keys (broken by fingerprint) and groups of weight 0 (never drawn) included."""
    import gaussmix._compiled as compiled_module
    from gaussmix.em.sampling import _GOLDEN, _S11, RowGroups, _mix, uniforms

    monkeypatch.setattr(compiled_module, "ENABLED", enabled)
    rng = np.random.RandomState(4)
    prints = rng.randint(0, 2**62, size=300).astype(np.uint64) * np.uint64(3)
    for stream in (0, 1, 12345, 2**62 + 17, 2**63 - 1):
        with np.errstate(over="ignore"):  # the definition, as array operations
            z = _mix(prints ^ _mix(np.full(1, stream, dtype=np.uint64) + _GOLDEN))
        np.testing.assert_array_equal(uniforms(prints, stream), ((z >> _S11).astype(np.float64) + 0.5) * 2.0**-53)

    def by_sorting(keys, prints, count):  # the largest finite keys, the smaller fingerprint first among equals
        order = sorted(np.flatnonzero(np.isfinite(keys)), key=lambda g: (-keys[g], prints[g]))
        return order[:count]

    for trial in range(300):
        n = rng.randint(1, 40)
        prints = np.unique(rng.randint(0, 2**62, size=n).astype(np.uint64))
        rng.shuffle(prints)
        weights = rng.choice([0.0, 1.0, 2.0, 3.0], size=prints.size, p=[0.2, 0.5, 0.2, 0.1])
        groups = RowGroups(prints, weights, np.arange(prints.size), np.arange(prints.size))
        count = rng.randint(1, prints.size + 3)
        keys = groups.keys(weights, trial)
        assert np.all(np.isneginf(keys[weights == 0])) and np.all(np.isfinite(keys[weights > 0]))
        assert list(groups.draw_distinct(weights, count, trial)) == by_sorting(keys, prints, count)
        tied = np.where(weights > 0, np.round(rng.rand(prints.size) * 4) / 4 - 1.0, -np.inf)  # many equal keys
        monkeypatch.setattr(RowGroups, "keys", lambda self, scores, stream, tied=tied: tied)
        assert list(groups.draw_distinct(weights, count, trial)) == by_sorting(tied, prints, count)
        monkeypatch.undo()
        monkeypatch.setattr(compiled_module, "ENABLED", enabled)


@pytest.mark.parametrize("n_features", [1, 5, 64, 65, 200])  # a chain of features, and blocks above 64
def test_compiled_fingerprints_are_the_numpy_ones(monkeypatch, n_features):
    import gaussmix._compiled as compiled_module
    from gaussmix.em.sampling import fingerprints

    rng = np.random.RandomState(n_features)
    X = rng.normal(size=(300, n_features)) * 10.0 ** rng.randint(-3, 4, size=n_features)
    X[3] = X[7]  # a duplicate
    X[5, 0] = 1e300  # clipped to the grid's limit
    X[6] = np.round(X[6], 1)  # values on the grid's lines
    mean, scale = X[10:].mean(axis=0), X[10:].std(axis=0)
    prints = {}
    for enabled in (True, False):
        monkeypatch.setattr(compiled_module, "ENABLED", enabled)
        with np.errstate(over="ignore"):
            prints[enabled] = fingerprints(X, mean, scale)
            np.testing.assert_array_equal(fingerprints(X.astype(np.float32), mean, scale),
                                          fingerprints(X.astype(np.float32).astype(np.float64), mean, scale))
    np.testing.assert_array_equal(prints[True], prints[False])
    assert prints[True][3] == prints[True][7] and len(set(prints[True].tolist())) == 299


def test_seeding_distances_are_exact_and_the_same_with_or_without_the_compiled_loop(monkeypatch):
    """Squared differences summed feature by feature in both paths: the same numbers bit for bit, 0 for a
    row equal to a centre, and a row's distance whatever its position."""
    import gaussmix._compiled as compiled_module
    from gaussmix.em.kmeans import distances_to

    rng = np.random.RandomState(5)
    for d, m in ((1, 17), (3, 1000), (40, 1500)):
        Zt = rng.normal(size=(d, m)) * 1e4
        centers = np.vstack([Zt[:, 11], rng.normal(size=(3, d))])
        order = rng.permutation(m)
        found = {}
        for enabled in (True, False):
            monkeypatch.setattr(compiled_module, "ENABLED", enabled)
            found[enabled] = distances_to(Zt, centers)
            np.testing.assert_array_equal(distances_to(np.ascontiguousarray(Zt[:, order]), centers),
                                          found[enabled][order])
        np.testing.assert_array_equal(found[True], found[False])
        assert found[True][11, 0] == 0.0 and np.all(np.delete(found[True][:, 0], 11) > 0)
        np.testing.assert_allclose(found[True], ((Zt.T[:, None, :] - centers[None]) ** 2).sum(axis=2), rtol=1e-12)


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_seeds_are_the_same_with_or_without_numba(monkeypatch, dtype):
    import gaussmix._compiled as compiled_module
    from gaussmix.em.kmeans import seed_centers

    X, _ = make_mixture(2000, [0.5, 0.3, 0.2], [[0, 0, 0], [6, 4, 1], [-2, 7, 3]], [np.eye(3)] * 3, random_state=1)
    X = np.vstack([X, X[:40]]).astype(dtype)  # with duplicate rows
    seeds = []
    for enabled in (True, False):
        monkeypatch.setattr(compiled_module, "ENABLED", enabled)
        seeds.append(seed_centers(ChunkedData(X, chunk_rows=300), 12, np.random.RandomState(0), "k-means++"))
    np.testing.assert_array_equal(seeds[0], seeds[1])
    assert len({tuple(row) for row in seeds[0]}) == 12  # distinct rows of the data


def test_kmeans_steps_on_the_standardised_rows_match_their_definitions():
    """Nearest centres (by standardised distance) and weighted cluster means, against brute force: with
    weights (some 0), a cluster without rows, and more rows than one block of the distances."""
    from gaussmix.em.kmeans import StandardisedRows

    rng = np.random.RandomState(8)
    n, d, K = 9000, 3, 6
    X = rng.normal(size=(n, d)) * [1.0, 100.0, 0.01] + [5.0, -3.0, 1e3]
    weights = rng.choice([0.0, 1.0, 2.5], size=n)
    rows = StandardisedRows(ChunkedData(X, weights, chunk_rows=1000))
    assert rows.Zt.shape[1] > rows.BLOCK
    mean = np.average(X, axis=0, weights=weights)
    scale = np.sqrt(np.average((X - mean) ** 2, axis=0, weights=weights))
    centers = X[rng.choice(n, K, replace=False)]
    labels, dist = rows.nearest(centers)
    brute = (((X[:, None, :] - centers[None]) / scale) ** 2).sum(axis=2)
    np.testing.assert_array_equal(labels, np.argmin(brute, axis=1))
    np.testing.assert_allclose(dist, brute.min(axis=1), rtol=1e-9, atol=1e-9)
    labels[labels == 2] = 4  # cluster 2 loses its rows
    counts, means = rows.means(labels, K)
    for k in range(K):
        mine = labels == k
        assert counts[k] == pytest.approx(weights[mine].sum())
        expected = np.average(X[mine], axis=0, weights=weights[mine]) if counts[k] > 0 else mean
        np.testing.assert_allclose(means[k], expected, rtol=1e-10)
