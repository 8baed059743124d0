"""How a mixture is fitted: EM on additive statistics, written against a data-source protocol.

=================  ==========================================================================
module             what it holds
=================  ==========================================================================
``source``         the :class:`~gaussmix.em.source.DataSource` protocol (what EM asks of data)
``statistics``     :class:`~gaussmix.em.statistics.Statistics`: sums that add across chunks
``kernels``        per-chunk kernels (E-step, statistics, log-probabilities) and reductions
``params``         :class:`~gaussmix.em.params.MixtureParams` and the kernels' terms
``scale``          the data's scale and every decision taken relative to it
``models``         what EM optimises (:class:`~gaussmix.em.models.MaximumLikelihood`, with or without a
                   noise component); ``prior`` (maximum a posteriori) and ``variational``
                   (a Bayesian mixture's posterior) are further models; ``noise`` measures the
                   noise's region and makes its first guess
``loop``           :func:`~gaussmix.em.loop.run_em`, one EM run
``fit``            restarts and the best of them: :func:`~gaussmix.em.fit.fit_mixture`
``observers``      what a fit reports as it goes (:class:`~gaussmix.em.observers.FitObserver`)
``search``         the short-EM search (``init_params="emem"``) from many short runs
``splitmerge``     split-and-merge moves and random swaps that refine a converged fit (the search)
``init``           starting parameters; ``kmeans``, ``hierarchical`` (mclust's start) and
                   ``sampling`` serve it
=================  ==========================================================================

Nothing here imports scikit-learn or an engine: the estimators bring both.
"""

#: The starting methods ``init_params`` names (read by the command line without numerical imports).
INIT_METHODS: tuple[str, ...] = ("kmeans", "k-means++", "random", "random_from_data", "emem", "hc")
