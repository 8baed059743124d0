"""Pictures: each function returns a Figure whose contents match the model."""

import warnings

import numpy as np
import pytest

matplotlib = pytest.importorskip("matplotlib")

from matplotlib.collections import PathCollection  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402
from matplotlib.patches import Ellipse  # noqa: E402

from gaussmix import GaussianMixture, plot  # noqa: E402
from gaussmix.datasets import load_faithful, make_mixture  # noqa: E402
from gaussmix.selection import criterion_table  # noqa: E402


@pytest.fixture(scope="module")
def two_d():
    X, y = make_mixture(300, [0.5, 0.3, 0.2], [[0, 0], [6, 4], [-1, 6]],
                        [np.eye(2), [[1.0, -0.5], [-0.5, 1.0]], [[0.4, 0], [0, 1.5]]], random_state=0)
    return X, GaussianMixture(3, random_state=0).fit(X)


@pytest.fixture(scope="module")
def four_d():
    X, _ = make_mixture(300, [0.5, 0.5], [[0, 0, 0, 0], [3, 3, -2, 1]], [np.eye(4)] * 2, random_state=1)
    return X, GaussianMixture(2, random_state=0).fit(X)


def data_axes(figure):
    return [ax for ax in figure.axes if ax.get_label() != "<colorbar>"]


def test_density_contours(two_d, tmp_path):
    X, gm = two_d
    figure = plot.density_contours(gm, X, levels=9)
    assert isinstance(figure, Figure)
    (ax,) = data_axes(figure)
    contour = next(c for c in ax.collections if hasattr(c, "levels"))
    assert len(contour.levels) == 9
    points, means = [c for c in ax.collections if isinstance(c, PathCollection)]
    np.testing.assert_allclose(points.get_offsets(), X)
    np.testing.assert_allclose(means.get_offsets(), gm.means_)
    # The highest level lies at the densest region: near a component mean.
    assert contour.levels.max() <= gm.score_samples(gm.means_).max()
    figure.savefig(tmp_path / "c.png")
    assert (tmp_path / "c.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_pairs_grid_for_more_features(four_d):
    X, gm = four_d
    assert len(data_axes(plot.density_contours(gm, X))) == 6
    (ax,) = data_axes(plot.density_contours(gm, X, features=(1, 3)))
    assert ax.get_xlabel() == "feature 1" and ax.get_ylabel() == "feature 3"
    means = [c for c in ax.collections if isinstance(c, PathCollection)][-1]
    np.testing.assert_allclose(means.get_offsets(), gm.means_[:, [1, 3]])
    with pytest.raises(ValueError, match="features"):
        plot.density_contours(gm, X, features=(0, 9))


def test_feature_names_label_the_axes(two_d):
    import pandas as pd

    X, _ = two_d
    frame = pd.DataFrame(X, columns=["eruptions", "waiting"])
    gm = GaussianMixture(2, random_state=0).fit(frame)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no feature-name warnings from the plots
        (ax,) = data_axes(plot.density_contours(gm, frame))
        plot.ellipses(gm, frame)
        plot.anomalies(gm, frame)
    assert (ax.get_xlabel(), ax.get_ylabel()) == ("eruptions", "waiting")


def test_criterion_curve(two_d):
    X, _ = two_d
    table = criterion_table(X, range(1, 5), ["full", "diag", "spherical"], random_state=0)
    table.append({"n_components": 5, "covariance_type": "full", "bic": np.nan, "aic": np.nan})  # a failed fit
    figure = plot.criterion_curve(table)
    bic_ax, aic_ax = figure.axes
    for ax, name in ((bic_ax, "bic"), (aic_ax, "aic")):
        lines = {line.get_label(): line for line in ax.get_lines()}
        assert set(lines) == {"full", "diag", "spherical"}
        for structure, line in lines.items():
            expected = [r[name] for r in table if r["covariance_type"] == structure and np.isfinite(r[name])]
            np.testing.assert_allclose(line.get_ydata(), expected)
        best = min((r for r in table if np.isfinite(r[name])), key=lambda r: r[name])
        marker = [c for c in ax.collections if isinstance(c, PathCollection)][-1]
        np.testing.assert_allclose(marker.get_offsets()[0], [best["n_components"], best[name]])
        assert f"best: {best['covariance_type']}, {best['n_components']} components" in [
            t.get_text() for t in ax.get_legend().get_texts()]
    assert bic_ax.get_legend() is not None
    import pandas as pd

    assert len(plot.criterion_curve(pd.DataFrame(table), "bic").axes) == 1
    assert len(plot.criterion_curve(table, ("bic", "aic", "icl")).axes) == 3
    with pytest.raises(ValueError, match="no column 'hqc'"):
        plot.criterion_curve(table, "hqc")


def test_criterion_curve_of_mclusts_fourteen_models(two_d):
    """One curve per model, each its own colour and marker, named in one legend beside the panels; each
    panel names its best candidate."""
    X, _ = two_d
    from gaussmix.covariance import MCLUST_MODELS

    table = criterion_table(X[:200], [1, 2], MCLUST_MODELS, init_params="hc", random_state=0)
    figure = plot.criterion_curve(table, ("bic", "icl"))
    bic_ax, icl_ax = figure.axes
    assert [line.get_label() for line in bic_ax.get_lines()] == list(MCLUST_MODELS)
    assert len({(tuple(line.get_color()), line.get_marker()) for line in bic_ax.get_lines()}) == 14
    assert [t.get_text() for t in figure.legends[0].get_texts()] == list(MCLUST_MODELS)
    for ax, name in ((bic_ax, "bic"), (icl_ax, "icl")):
        best = min(table, key=lambda r: r[name])
        assert [t.get_text() for t in ax.get_legend().get_texts()] == [
            f"best: {best['covariance_type']}, {best['n_components']} components"]


def test_ellipses_geometry_and_colours(two_d):
    X, gm = two_d
    figure = plot.ellipses(gm, X)
    soft, hard = figure.axes
    for ax in (soft, hard):
        patches = [p for p in ax.patches if isinstance(p, Ellipse)]
        assert len(patches) == 3 * 3
        for k in range(3):
            values = np.linalg.eigvalsh(gm.covariances_[k])
            mine = [p for p in patches if np.allclose(p.center, gm.means_[k])]
            widths = sorted(p.width for p in mine)
            np.testing.assert_allclose(widths, 2 * np.array([1, 2, 3]) * np.sqrt(values[1]))
            np.testing.assert_allclose(sorted(p.height for p in mine), 2 * np.array([1, 2, 3]) * np.sqrt(values[0]))
    colors = plot._common.component_colors(3)
    resp = gm.predict_proba(X)
    soft_points = soft.collections[0].get_facecolors()[:, :3]
    hard_points = hard.collections[0].get_facecolors()[:, :3]
    np.testing.assert_allclose(soft_points, np.clip(resp @ colors, 0, 1), atol=1e-6)
    np.testing.assert_allclose(hard_points, colors[resp.argmax(axis=1)], atol=1e-6)


def test_em_progress_from_estimator_and_from_history(two_d):
    X, _ = two_d
    estimator = GaussianMixture(3, init_params="random_from_data", random_state=11, tol=1e-6)
    figure = plot.em_progress(estimator, X, iterations=(0, 1, 5, 500))
    axes = figure.axes
    assert len(axes) == 4
    assert axes[0].get_title().startswith("initialisation")
    assert axes[1].get_title().startswith("iteration 1\n")
    assert "converged; asked for 500" in axes[3].get_title()
    assert not hasattr(estimator, "converged_")  # the given estimator is left alone

    history = []
    GaussianMixture(3, covariance_type="diag", random_state=0, callback=history.append).fit(X)
    figure = plot.em_progress(history, X, iterations=(1, 2))
    assert [ax.get_title().split("\n")[0] for ax in figure.axes] == ["iteration 1", "iteration 2"]
    with pytest.raises(ValueError, match="restart 3"):
        plot.em_progress(history, X, restart=3)


def test_density_1d():
    x = load_faithful().data[:, :1]
    gm = GaussianMixture(2, random_state=0).fit(x)
    figure = plot.density_1d(gm, x)
    (ax,) = figure.axes
    lines = ax.get_lines()
    assert len(lines) == 1 + 2
    grid, mixture = lines[0].get_xdata(), lines[0].get_ydata()
    components = sum(line.get_ydata() for line in lines[1:])
    np.testing.assert_allclose(components, mixture, rtol=1e-9)
    assert np.trapezoid(mixture, grid) == pytest.approx(1.0, abs=0.01)
    # One feature of a two-feature model: its marginal.
    full = GaussianMixture(2, random_state=0).fit(load_faithful().data)
    marginal = plot.density_1d(full, load_faithful().data, feature=1).axes[0].get_lines()[0]
    np.testing.assert_allclose(marginal.get_ydata(), np.exp(full.marginal([1]).score_samples(
        marginal.get_xdata()[:, None])))


def test_anomalies(two_d):
    X, gm = two_d
    outliers = np.array([[15.0, -6.0], [-8.0, 12.0]])
    data = np.vstack([X, outliers])
    threshold = -9.0
    figure = plot.anomalies(gm, data, threshold)
    (ax,) = figure.axes
    inliers, flagged = [c for c in ax.collections if isinstance(c, PathCollection)]
    below = gm.score_samples(data) < threshold
    np.testing.assert_allclose(flagged.get_offsets(), data[below])
    assert {tuple(p) for p in outliers} <= {tuple(p) for p in flagged.get_offsets()}
    assert len(inliers.get_offsets()) == (~below).sum()
    assert ax.get_title().startswith(f"{below.sum()} of {len(data)}")
    default = plot.anomalies(gm, data).axes[0]
    assert default.get_title().startswith(f"{int(np.ceil(0.02 * len(data)))} of")


def test_into_existing_axes(two_d):
    X, gm = two_d
    figure = Figure()
    ax = figure.add_subplot()
    assert plot.density_contours(gm, X, ax=ax) is figure
    assert plot.density_1d(gm, X, feature=0, ax=ax) is figure


def test_unnamed_models_take_their_axis_labels_as_feature_names(blobs):
    from gaussmix.plot._common import feature_names, feature_pairs

    model = GaussianMixture(2, random_state=0).fit(blobs[0])
    assert feature_names(model)[2] == "feature 2"
    assert feature_pairs(model, ["feature 0", "feature 2"]) == [(0, 2)]
    assert feature_pairs(model, [2, 1]) == [(2, 1)]
