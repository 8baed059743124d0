"""What a fit reports as it goes: restarts, EM iterations, their results.

:func:`~gaussmix.em.fit.fit_mixture` and the short-EM search
(:mod:`gaussmix.em.search`) send events to a :class:`FitObserver`; the
estimators build theirs from ``verbose`` and ``callback``.
"""

from __future__ import annotations

import time

from gaussmix.em.loop import EMResult, IterationInfo


class FitObserver:
    """Receives progress events; the base class ignores them all."""

    @property
    def listens(self) -> bool:
        """Whether :meth:`iteration` uses its events (it is overridden).

        Where no observer listens, runs made several at once do not build
        the events and report only how many there were (:meth:`unreported`).
        """
        return type(self).iteration is not FitObserver.iteration

    def restart_started(self, restart: int, n_restarts: int) -> None:
        """Called before restart ``restart`` (0-based) initialises."""

    def iteration(self, info: IterationInfo) -> None:
        """Called with the starting parameters (iteration 0), then after each EM iteration."""

    def unreported(self, restart: int, n_iterations: int) -> None:
        """Called instead of :meth:`iteration` for the EM iterations of a run whose events were not built."""

    def restart_finished(self, restart: int, result: EMResult) -> None:
        """Called after restart ``restart`` has finished."""


class ObserverGroup(FitObserver):
    """Passes every event to several observers, in order."""

    def __init__(self, *observers: FitObserver):
        self.observers = observers

    @property
    def listens(self) -> bool:
        return any(observer.listens for observer in self.observers)

    def restart_started(self, restart, n_restarts):
        for observer in self.observers:
            observer.restart_started(restart, n_restarts)

    def iteration(self, info):
        for observer in self.observers:
            observer.iteration(info)

    def unreported(self, restart, n_iterations):
        for observer in self.observers:
            observer.unreported(restart, n_iterations)

    def restart_finished(self, restart, result):
        for observer in self.observers:
            observer.restart_finished(restart, result)


class CallbackObserver(FitObserver):
    """Calls ``callback(info)`` for every iteration event."""

    def __init__(self, callback):
        self.callback = callback

    def iteration(self, info):
        self.callback(info)


class VerbosePrinter(FitObserver):
    """Prints progress like scikit-learn's ``verbose`` option."""

    def __init__(self, verbose: int, interval: int):
        self.verbose = verbose
        self.interval = interval
        self._start = self._last = 0.0

    def restart_started(self, restart, n_restarts):
        print(f"Initialization {restart}")
        self._start = self._last = time.perf_counter()

    def iteration(self, info: IterationInfo):
        if info.iteration == 0 or info.iteration % self.interval:
            return
        if self.verbose == 1:
            print(f"  Iteration {info.iteration}")
        else:
            now = time.perf_counter()
            print(
                f"  Iteration {info.iteration}\t time lapse {now - self._last:.5f}s\t "
                f"ll change {info.change:.5f}"
            )
            self._last = now

    def restart_finished(self, restart, result: EMResult):
        status = "converged" if result.converged else "did not converge"
        if self.verbose == 1:
            print(f"Initialization {status}.")
        else:
            print(
                f"Initialization {status}. time lapse {time.perf_counter() - self._start:.5f}s\t "
                f"lower bound {result.lower_bound:.5f}."
            )


class IterationCount(ObserverGroup):
    """Passes every event on to ``observer`` and counts the EM iterations (``count``)."""

    def __init__(self, observer: FitObserver):
        super().__init__(observer)
        self.count = 0

    def iteration(self, info):
        self.count += info.iteration > 0
        super().iteration(info)

    def unreported(self, restart, n_iterations):
        self.count += n_iterations
        super().unreported(restart, n_iterations)

