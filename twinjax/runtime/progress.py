"""Progress of long loops: a bar on a terminal, a few readable log lines everywhere else.

Redirected to a file, carriage-return progress bars become hundreds of kilobytes of noise; there
a loop logs one line when it starts, one every tenth of the way, and one when it ends, each with
the step, the latest loss, the time so far and the time left.
"""

import logging
import sys
import time

from tqdm.auto import tqdm

log = logging.getLogger(__name__)


class LogProgress:
    """The part of tqdm's interface the loops use, written as log lines."""

    def __init__(self, total: int, initial: int, desc: str, lines: int = 10):
        self.total, self.n, self.desc = total, initial, desc
        self.every = max(1, (total - initial) // lines)
        self.start, self.first, self.loss, self.next = time.perf_counter(), initial, None, initial
        log.info("%s: steps %d-%d", desc, initial + 1, total)

    def set_postfix(self, loss: str | None = None) -> None:
        self.loss = loss

    def update(self, k: int = 1) -> None:
        self.n += k
        if self.n >= self.next + self.every or self.n >= self.total:
            self.next = self.n
            elapsed = time.perf_counter() - self.start
            rate = (self.n - self.first) / max(elapsed, 1e-9)
            left = (self.total - self.n) / max(rate, 1e-9)
            loss = f" loss {self.loss}" if self.loss is not None else ""
            log.info("%s: step %d/%d%s, %.0fs elapsed, %.0fs left", self.desc, self.n,
                     self.total, loss, elapsed, left)  # fmt: skip

    def close(self) -> None:
        pass


def on_terminal() -> bool:
    """Whether stderr is a terminal: where a carriage-return bar (tqdm's, NumPyro's) belongs."""
    return sys.stderr.isatty()


def progress(total: int, *, initial: int = 0, desc: str, enabled: bool = True):
    """A tqdm bar when ``enabled`` and stderr is a terminal; log lines when it is not; nothing
    when not ``enabled``."""
    if enabled and not on_terminal():
        return LogProgress(total, initial, desc)
    return tqdm(total=total, initial=initial, desc=desc, disable=not enabled, leave=False)
