"""A one-line progress display for long fits, on a terminal only."""

from __future__ import annotations

import sys
import time


class TerminalProgress:
    """Callback for ``GaussianMixture(callback=...)`` that redraws one status line.

    Writes to ``stream`` (standard error by default) at most ``rate`` times a
    second, and only when the stream is a terminal; :meth:`close` clears the
    line.
    """

    def __init__(self, n_init: int, max_iter: int, stream=None, rate: float = 10.0, force: bool = False):
        self.stream = stream if stream is not None else sys.stderr
        self.enabled = force or bool(getattr(self.stream, "isatty", lambda: False)())
        self.n_init = n_init
        self.max_iter = max_iter
        self.interval = 1.0 / rate
        self._last = 0.0
        self._width = 0

    def __call__(self, info) -> None:
        if not self.enabled:
            return
        now = time.monotonic()
        if now - self._last < self.interval and info.iteration not in (0, self.max_iter):
            return
        self._last = now
        # Short-EM starts run more than n_init: the best continue, then split-and-merge moves and random swaps.
        run = (f"start {info.restart + 1}/{self.n_init}" if info.restart < self.n_init
               else f"refining (run {info.restart + 1})")
        text = f"fitting: {run}  iteration {info.iteration}/{self.max_iter}"
        if info.iteration > 0:
            text += f"  log-likelihood/row {info.lower_bound:.6f}  change {abs(info.change):.2e}"
        self._write(text)

    def _write(self, text: str) -> None:
        padding = " " * max(0, self._width - len(text))
        self.stream.write("\r" + text + padding)
        self.stream.flush()
        self._width = len(text)

    def close(self) -> None:
        if self.enabled and self._width:
            self._write("")
            self.stream.write("\r")
            self.stream.flush()
            self._width = 0
