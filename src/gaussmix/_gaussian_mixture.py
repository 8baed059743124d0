"""The scikit-learn-compatible estimator :class:`GaussianMixture`."""

from __future__ import annotations

import math
from numbers import Real
from typing import Any

import numpy as np

from gaussmix._mixture import BaseMixture
from gaussmix._validation import check_init_method, check_int, check_prior, check_real
from gaussmix.covariance import get_structure
from gaussmix.em.fit import FitSettings
from gaussmix.em.init import INIT_METHODS
from gaussmix.em.noise import VOLUME_METHODS
from gaussmix.exceptions import InvalidParameterError


class GaussianMixture(BaseMixture):
    """Gaussian mixture model fitted by Expectation-Maximisation.

    A drop-in for :class:`sklearn.mixture.GaussianMixture` (same parameters,
    methods and fitted attributes) that also takes ``sample_weight``, keeps
    working on degenerate data, gives the same clustering whatever the units
    or scale of the features, and stays accurate in float32.

    Parameters
    ----------
    n_components : int, default=1
        Number of mixture components.
    covariance_type : str, default="full"
        Structure of the covariance matrices, a name from
        :func:`gaussmix.covariance.available_structures`: scikit-learn's
        "full" (one general matrix per component), "tied" (one shared
        general matrix), "diag" (one diagonal matrix per component) or
        "spherical" (one variance per component), or one of mclust's
        fourteen models ``Sigma_k = lambda_k D_k A_k D_k'`` named by volume,
        shape and orientation, each Equal, Variable or the Identity: "EII",
        "VII", "EEI", "VEI", "EVI", "VVI", "EEE", "VEE", "EVE", "VVE", "EEV",
        "VEV", "EVV", "VVV" (VVV, EEE, VVI and VII are full, tied, diag and
        spherical), and "E" / "V" for one feature (equal / varying
        variance). The README's table gives each model's storage shape and
        parameter count.
    equal_proportions : bool, default=False
        mclust's ``equalPro``: every component has weight
        ``1 / n_components`` (the weights are not estimated, and BIC counts
        ``n_components - 1`` parameters fewer).
    prior : None, "default" or dict, default=None
        Fit by maximum a posteriori under a conjugate prior instead of by
        maximum likelihood (mclust's ``prior = priorControl()``, Fraley and
        Raftery 2007). It removes the spurious singular optima that make
        BIC fail on small or discrete data. ``"default"`` is mclust's
        ``defaultPrior``: a normal prior on each mean about the data mean,
        worth ``shrinkage=0.01`` of a row, and on the covariances an
        inverse Wishart (general matrices) or inverse gamma (variances) of
        ``dof = n_features + 2`` degrees of freedom whose ``scale`` is the
        data covariance times ``(1 / n_components)^(2 / n_features)`` (its
        mean variance for diagonal and spherical models). A dict sets any
        of ``shrinkage``, ``mean``, ``dof`` and ``scale`` (a number, a
        variance per feature or a matrix) and takes the default for the
        others. Models whose components share one covariance have one
        covariance prior, the others one per component. ``lower_bound_``
        then includes the prior's log density; BIC, AIC and ``score`` are
        the log-likelihood at the posterior mode, as mclust computes them.
    noise : bool or array of bool of shape (n_samples,), default=False
        Fit a uniform noise component with the Gaussians (Banfield and
        Raftery 1993; mclust's ``noise``): rows that belong to no cluster
        are explained by a constant density ``1 / V`` over the data's
        region instead of pulling the Gaussians. ``True`` makes the first
        guess of the noise rows by a nearest-neighbour density rule (Byers
        and Raftery 1998, as mclust's examples do; or the rows labelled -1
        when ``init_params`` is a label array); a boolean mask gives it.
        The Gaussians start from the other rows, then EM runs on all of
        them. ``predict`` gives -1 for rows the noise owns,
        ``predict_proba`` has the noise's column last, ``weights_`` leave
        ``noise_proportion_`` of 1 and BIC counts one parameter more.
        Needs the rows in memory (not on the Dask engine). With
        ``init_params="emem"`` each start is run to convergence, without
        the split-and-merge search.
    noise_volume : None, {"hypvol", "box", "principal", "hull"} or float, default=None
        The volume ``V`` of the noise's region: mclust's ``hypvol`` (None or
        "hypvol": the smaller of the bounding boxes along the features and
        along the principal axes), either box, the convex hull, or a number.
    tol : float, default=1e-3
        EM stops when the lower bound (the weighted mean log-likelihood per
        sample) changes by less than ``tol``.
    reg_covar : float, default=1e-6
        Added to the diagonal of every covariance, **in units of each
        feature's variance** in the training data (scikit-learn adds it in
        absolute units). Results therefore do not depend on the scale of the
        features, and on data with unit variance they equal scikit-learn's.
    max_iter : int, default=100
        Maximum number of EM iterations per initialisation.
    n_init : int, default=1
        Number of initialisations, each from a new random draw of
        ``init_params``'s method, each run to convergence. The run kept is
        the one with the highest final lower bound among those in which no
        component collapsed (a collapsed component's spike of density
        inflates the likelihood; see
        :class:`~gaussmix.exceptions.CollapsedComponentWarning`); only when
        every run collapsed is the best of them kept. With
        ``init_params="emem"``, ``n_init`` is the number of short runs (see
        there). The hierarchical start ("hc"), a start given as an array and
        a warm start are deterministic: they run once whatever ``n_init``.
    init_params : {"kmeans", "k-means++", "random", "random_from_data", "emem", "hc"} or array-like, \
default="kmeans"
        How initial responsibilities are chosen: k-means (k-means++ seeding,
        then Lloyd iterations), k-means++ seeds alone, uniformly random
        responsibilities, or randomly chosen distinct rows as seeds. Seeded
        methods assign each row to its nearest seed, so initial covariances
        come from the data. Sample weights are used throughout, and the
        random draws depend on the rows' values, not their order: shuffling
        the rows, or shifting and rescaling features, does not change the
        fit. "random" starts every component near the overall mean; on
        well-separated data EM can stop there within ``tol`` (as in
        scikit-learn), so prefer "kmeans". "emem" (short-EM multi-starts,
        after Biernacki, Celeux & Govaert 2003): ``n_init`` starts (the first
        by k-means, the others from distinct random rows) each run at most
        20 EM iterations, or until the lower bound changes by less than
        ``max(tol, 1e-3)``. The short runs are dealt in turn to four
        independent searches (one search where there are fewer than four
        short runs, two where there are fewer than six, three where there
        are fewer than eight), and the best of their results is kept. In
        each search, the 2 best
        short runs (fewest collapsed components first, then the highest
        bound) continue to convergence (more, one at a time, while all of
        those collapsed). The best of them
        is then refined by split-and-merge moves (after Ueda et al. 2000): a collapsed component, or one that
        overlaps another (or has little weight), is removed and the
        component widest for its weight is split across its widest
        direction; the 16 most promising moves each run a short EM, a move
        that ends higher continues to convergence and is kept, and this
        repeats until no move improves the fit or the search reaches an
        optimum already reached (at most 10 rounds and 32 moves).
        Random swaps (after Zhao et al. 2012) then refine the result: in each
        round, 8 fits in which a component chosen at random moves to a row
        drawn at random (its covariance a quarter of that of the component
        the row is most likely under) each run a short EM; the best continues
        to convergence if it is ahead and is kept if it ends higher (at most
        128 rounds, ending after 30 that improve nothing, and with at most
        7 times the EM iterations of the search before them; where every
        continued run ended at the same optimum, after 3 and within once
        those iterations). A move's or swap's short run stops where a
        component collapses (it cannot win), and a swap's also where its
        bound, rising twice as fast as in its last iteration, could not
        catch up with the fit's. With "full" covariances on at most 2,000 rows,
        up to 4 of a round's 8 fits instead move a component onto a tight
        group (a row and its d + 1 or d + 3 nearest rows, with the group's
        own mean and covariance), the groups whose own component would gain
        the most likelihood less what the move costs. Independent searches
        from a few starts each reach the best optimum more often than one
        from all of them (a search's swaps stay near the optimum it found).
        Random rows find
        optima that every k-means start misses when one direction dominates
        the data, the moves leave local optima in which two components share
        one group while another covers two, and the swaps reach optima no
        rule points to, such as a narrow component on one arm of the data.
        On small data the short runs, the moves, the swaps and the
        continuations run as batches (one pass over the rows per iteration
        for several runs, :mod:`gaussmix.em.batch`; the same runs as one by
        one), and with numba installed each iteration on small data is one
        compiled call. For its cost, see ``benchmarks/README.md``. "hc" is mclust's default start:
        model-based agglomerative hierarchical clustering (unconstrained
        Gaussian clusters, mclust's criterion and its "SVD" transformation of
        the data; the same merges as mclust's ``hc``), cut at
        ``n_components`` clusters; on more than 2,000 rows it is built on a
        weighted sample of 2,000 and EM's first E-step assigns the rest. A
        selector builds the hierarchy once for all its candidates. An array
        gives the start itself:
        labels of shape ``(n_samples,)`` (a component index per row of X)
        or responsibilities of shape ``(n_samples, n_components)`` (rows
        summing to 1); the initial parameters are those of that partition
        (``means_init`` and the other given arrays still replace theirs).
    weights_init : array-like of shape (n_components,), default=None
        Initial weights (replace the estimate from ``init_params``).
    means_init : array-like of shape (n_components, n_features), default=None
        Initial means; rows are assigned to the nearest of them to estimate
        the initial covariances (unless ``precisions_init`` is also given).
    precisions_init : array-like, default=None
        Initial precisions (inverse covariances). Shape by ``covariance_type``:
        ``(n_components, n_features, n_features)`` for "full",
        ``(n_features, n_features)`` for "tied", ``(n_components, n_features)``
        for "diag", ``(n_components,)`` for "spherical".
    random_state : int, RandomState instance or None, default=None
        Controls initialisation and :meth:`sample`.
    warm_start : bool, default=False
        If True, each call to ``fit`` after the first continues from the
        fitted parameters (with a single initialisation).
    verbose : int, default=0
        1 prints each initialisation; 2 also prints timings and lower-bound
        changes every ``verbose_interval`` iterations.
    verbose_interval : int, default=10
        Iterations between two verbose messages.
    callback : callable or None, default=None
        Called as ``callback(info)`` with an :class:`~gaussmix.IterationInfo`
        for the starting parameters of each initialisation (iteration 0) and
        after every EM iteration: restart, iteration, lower bound, change and
        the current parameters. Use it to record or display progress
        (:func:`gaussmix.plot.em_progress` does). An exception raised in the
        callback stops the fit and leaves the estimator as it was.
    engine : {"auto", "numpy", "torch", "dask"}, default="auto"
        Where the computations run. ``"auto"`` follows the input: a torch
        tensor runs on the torch engine on the tensor's device, a Dask array
        or dataframe on the Dask engine (one map and one tree reduction per
        EM iteration, on the current Dask scheduler), anything else on NumPy.
        Results for a tensor are tensors on its device, for a Dask array lazy
        Dask arrays; fitted attributes are NumPy arrays on every engine.
    device : str, torch.device or None, default=None
        Torch device for the torch engine (``"cuda"``, ``"cuda:1"``,
        ``"cpu"``); with ``engine="auto"`` it sends NumPy input to torch.
        Data that do not fit in the GPU's memory are streamed from the host
        chunk by chunk.

    Attributes
    ----------
    weights_ : ndarray of shape (n_components,)
        Mixing weights. A component that lost all responsibility during EM
        has weight 0 (see :class:`gaussmix.exceptions.EmptyComponentWarning`).
    means_ : ndarray of shape (n_components, n_features)
    covariances_ : ndarray
        Covariances, shaped as ``precisions_init``.
    precisions_ : ndarray
        Inverses of the covariances.
    precisions_cholesky_ : ndarray
        ``U`` with ``U @ U.T == precision`` per component (upper-triangular
        after EM); ``1 / sqrt(variance)`` for "diag" and "spherical".
    converged_ : bool
        Whether the best initialisation reached ``tol`` before ``max_iter``.
    collapsed_components_ : ndarray of int
        Components whose variance in some direction is only the
        regularisation (see :class:`~gaussmix.exceptions.CollapsedComponentWarning`);
        usually empty.
    n_iter_ : int
        EM iterations of the best initialisation.
    lower_bound_ : float
        Lower bound (weighted mean log-likelihood, plus the prior's log
        density over the total weight with ``prior``) at the last iteration
        of the best initialisation.
    lower_bounds_ : list of float
        Lower bound at each iteration of the best initialisation.
    noise_volume_ : float
        With ``noise``: the volume ``V`` of the noise's region (its density is ``1 / V``).
    noise_bounds_ : ndarray of shape (2, n_features)
        With ``noise``: the training rows' bounding box (lower, upper), from which ``sample`` draws noise.
    noise_proportion_ : float
        The noise component's weight (0.0 without one).
    n_features_in_ : int
    feature_names_in_ : ndarray of str
        Defined only when ``X`` has string column names.
    model_name_, covariance_matrices_, volume_, shape_, orientation_
        mclust's view of the covariances (computed from ``covariances_``):
        the model's name ("VEV"; "E"/"V" on one feature), every covariance
        as a ``(d, d)`` matrix, and the decomposition ``Sigma_k = volume_k
        D_k diag(shape_k) D_k'`` with mclust's normalisation (see
        :mod:`gaussmix.covariance.decomposition`).

    Notes
    -----
    Degenerate data: a covariance can never become singular while
    ``reg_covar > 0``, so collapsed components (duplicate rows, a constant
    feature, fewer rows than features) do not stop a fit. A component whose
    total responsibility falls to ``1e-12`` of the total weight is dropped: it
    keeps its place in the arrays with weight 0, and an
    :class:`~gaussmix.exceptions.EmptyComponentWarning` says which one and
    when. With ``reg_covar=0`` a singular covariance raises
    :class:`~gaussmix.exceptions.FitError`, a ``ValueError`` that says what
    to change; so does a non-finite log-likelihood.

    Examples
    --------
    >>> from gaussmix import GaussianMixture
    >>> from gaussmix.datasets import load_faithful
    >>> X = load_faithful().data
    >>> gm = GaussianMixture(n_components=2, random_state=0).fit(X)
    >>> gm.means_.round(1)
    array([[ 4.3, 80. ],
           [ 2. , 54.5]])
    >>> gm.predict([[2.0, 50.0], [4.5, 85.0]])
    array([1, 0])
    >>> gm.predict_proba([[3.0, 70.0]]).round(3)
    array([[0.963, 0.037]])
    """

    def __init__(
        self,
        n_components: int = 1,
        *,
        covariance_type: str = "full",
        equal_proportions: bool = False,
        prior: Any = None,
        noise: Any = False,
        noise_volume: Any = None,
        tol: float = 1e-3,
        reg_covar: float = 1e-6,
        max_iter: int = 100,
        n_init: int = 1,
        init_params: str = "kmeans",
        weights_init: Any = None,
        means_init: Any = None,
        precisions_init: Any = None,
        random_state: Any = None,
        warm_start: bool = False,
        verbose: int = 0,
        verbose_interval: int = 10,
        callback: Any = None,
        engine: str = "auto",
        device: Any = None,
    ):
        self.n_components = n_components
        self.covariance_type = covariance_type
        self.equal_proportions = equal_proportions
        self.prior = prior
        self.noise = noise
        self.noise_volume = noise_volume
        self.tol = tol
        self.reg_covar = reg_covar
        self.max_iter = max_iter
        self.n_init = n_init
        self.init_params = init_params
        self.weights_init = weights_init
        self.means_init = means_init
        self.precisions_init = precisions_init
        self.random_state = random_state
        self.warm_start = warm_start
        self.verbose = verbose
        self.verbose_interval = verbose_interval
        self.callback = callback
        self.engine = engine
        self.device = device

    def _checked_settings(self) -> FitSettings:
        """Validate the hyper-parameters and bundle those that define the fit."""
        self._check_reporting("warm_start", "equal_proportions")
        check_noise_volume(self.noise_volume)
        if not (self.noise is True or self.noise is False or self.noise is None or isinstance(self.noise, np.ndarray)
                or isinstance(self.noise, np.bool_)):
            raise InvalidParameterError(
                f"noise must be True, False or a boolean mask of the rows, got {type(self.noise).__name__}."
            )
        return FitSettings(
            n_components=check_int(self.n_components, "n_components", 1),
            structure=get_structure(self.covariance_type),
            init=check_init_method(self.init_params, INIT_METHODS),
            n_init=check_int(self.n_init, "n_init", 1),
            tol=check_real(self.tol, "tol", 0.0),
            reg_covar=check_real(self.reg_covar, "reg_covar", 0.0),
            max_iter=check_int(self.max_iter, "max_iter", 0),
            equal_proportions=bool(self.equal_proportions),
            prior=check_prior(self.prior),
        )


def check_noise_volume(value: Any) -> None:
    """InvalidParameterError unless ``value`` is None, a volume method's name or a positive finite number."""
    if value is None or (isinstance(value, str) and value in VOLUME_METHODS):
        return
    if isinstance(value, Real) and not isinstance(value, bool) and math.isfinite(value) and value > 0:
        return
    raise InvalidParameterError(
        f"noise_volume must be None, one of {', '.join(map(repr, VOLUME_METHODS))} or a positive number; "
        f"got {value!r}."
    )
