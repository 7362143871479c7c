"""Training curves a person can watch: TensorBoard event files with a CSV copy beside them.

A :class:`ScalarWriter` writes every scalar twice, into TensorBoard event files (tensorboardX:
numpy and protobuf only, no TensorFlow) and into ``scalars.csv`` (``tag,step,value,wall_time``)
in the same directory; ``hparams`` records a run's settings for TensorBoard's HParams dashboard,
so ``tensorboard --logdir outputs`` lines up the runs of a sweep.

The loops never need a writer passed down to them: the app opens one for its run directory and
makes it the default (``with writer.as_default(): ...``, as ``tf.summary`` does); a loop asks
:func:`current` and writes nothing when no writer is open (library use, tests).
"""

import contextlib
import contextvars
import csv
import math
import time
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any

import numpy as np

from twinjax.runtime.files import RunWriteError, replacing, write_errors

_CURRENT: contextvars.ContextVar["ScalarWriter | None"] = contextvars.ContextVar(
    "twinjax_scalar_writer", default=None
)
HParam = int | float | str | bool


class ScalarWriter:
    """Scalars into TensorBoard event files and ``scalars.csv`` under ``logdir``.

    Args:
      logdir: the directory (created); an existing one is appended to (a resumed run).

    Example:
        >>> import tempfile
        >>> with tempfile.TemporaryDirectory() as d, ScalarWriter(d) as w:
        ...     w.scalar("population/loss", 0.5, step=1)
        ...     print(open(f"{d}/scalars.csv").read().splitlines()[1].split(",")[:3])
        ['population/loss', '1', '0.5']
    """

    def __init__(self, logdir: str | Path):
        from tensorboardX import SummaryWriter

        self.logdir = Path(logdir)
        self.logdir.mkdir(parents=True, exist_ok=True)
        self._tb = SummaryWriter(str(self.logdir), flush_secs=30)
        path = self.logdir / "scalars.csv"
        new = not path.exists()
        self._file = path.open("a", newline="", buffering=1)  # line by line: live
        self._csv = csv.writer(self._file)
        if new:
            self._csv.writerow(["tag", "step", "value", "wall_time"])

    def scalar(self, tag: str, value: Any, step: int) -> None:
        """One value (a number or a size-1 array) of the curve ``tag`` at ``step``."""
        value, now = float(np.asarray(value)), time.time()
        self._tb.add_scalar(tag, value, int(step), walltime=now)
        with write_errors(self._file.name):
            self._csv.writerow([tag, int(step), repr(value), f"{now:.3f}"])

    def scalars(self, values: Mapping[str, Any], step: int, *, prefix: str = "") -> None:
        """Several curves at one step (``prefix/name`` for each ``name``)."""
        for name, value in values.items():
            self.scalar(f"{prefix}/{name}" if prefix else name, value, step)

    def series(self, tag: str, values: Any, *, max_points: int = 500) -> None:
        """A finished curve (``values[i]`` at step ``i + 1``), thinned to about ``max_points``
        points (the last one always kept)."""
        values = np.asarray(values).reshape(len(values), -1).mean(1)
        every = max(1, len(values) // max_points)
        steps = list(range(every - 1, len(values), every))
        if len(values) and steps[-1] != len(values) - 1:
            steps.append(len(values) - 1)
        for i in steps:
            self.scalar(tag, values[i], i + 1)

    def hparams(self, params: Mapping[str, Any], metrics: Mapping[str, float]) -> None:
        """The run's settings (flattened: ``train.lr``) and its result metrics for the HParams
        dashboard; the metrics are also written as scalars (step 0), and both go to
        ``hparams.csv``."""
        from tensorboardX.summary import hparams

        flat = {k: _hparam_value(v) for k, v in flatten(params).items()}
        metrics = {k: float(v) for k, v in metrics.items()}
        for summary in hparams(flat, metrics):
            self._tb.file_writer.add_summary(summary)
        self.scalars(metrics, 0)
        with replacing(self.logdir / "hparams.csv") as tmp, tmp.open("w", newline="") as f:
            rows = [("hparam", k, v) for k, v in flat.items()]
            csv.writer(f).writerows([("kind", "name", "value"), *rows,
                                     *[("metric", k, v) for k, v in metrics.items()]])  # fmt: skip

    def flush(self) -> None:
        self._tb.flush()
        self._file.flush()

    def close(self) -> None:
        self._tb.close()
        self._file.close()

    @contextlib.contextmanager
    def as_default(self) -> Iterator["ScalarWriter"]:
        """Makes this the writer :func:`current` returns inside the ``with`` block."""
        token = _CURRENT.set(self)
        try:
            yield self
        finally:
            _CURRENT.reset(token)
            self.flush()

    def __enter__(self) -> "ScalarWriter":
        return self

    def __exit__(self, kind, *exc) -> None:
        try:
            self.close()
        except (OSError, RunWriteError):
            if kind is None:  # else the error that ends the run is the one to report
                raise


def current() -> ScalarWriter | None:
    """The default writer (set by :meth:`ScalarWriter.as_default`), or None."""
    return _CURRENT.get()


def flatten(tree: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    """Nested mappings as one level with dotted keys (``{"train": {"lr": 1}}`` -> ``train.lr``)."""
    out = {}
    for k, v in tree.items():
        key = f"{prefix}.{k}" if prefix else str(k)
        out.update(flatten(v, key) if isinstance(v, Mapping) else {key: v})
    return out


def _hparam_value(v: Any) -> HParam:
    if isinstance(v, bool | int | str) or (isinstance(v, float) and math.isfinite(v)):
        return v
    return str(v)  # None, lists, paths: shown as text


def loss_hook(
    name: str,
    last: int,
    *,
    every: int = 10,
    extra: Callable[[int, Any], Mapping[str, Any]] | None = None,
    extra_every: int = 0,
) -> Callable[[int, Any, Any], None] | None:
    """An ``on_step`` for :func:`twinjax.runtime.run_loop` that writes ``name/loss`` (the mean
    over individuals) to the default writer every ``every`` steps and at step ``last``, and the
    scalars ``extra(done, state)`` under ``name/`` every ``extra_every`` steps and at ``last``;
    None when no writer is open (the loop then does nothing more than before)."""
    writer = current()
    if writer is None:
        return None

    def hook(done: int, state, loss) -> None:
        if loss is not None and (done % every == 0 or done == last):
            writer.scalar(f"{name}/loss", np.mean(np.asarray(loss)), done)
        if extra is not None and (done == last or (extra_every and done % extra_every == 0)):
            writer.scalars(extra(done, state), done, prefix=name)

    return hook
