"""Calibrated forecasts from any point forecaster, and the choice among forecasters.

Rolling origins: for ``j = 1..K`` each subject's training visits are cut to its first
``n_i - j`` and the forecaster predicts the next visits up to ``H`` ahead (as far as the subject
has them). The errors, divided by the subject's own scale (the RMS of its visit-to-visit changes
so far, shrunk towards the cohort's), are pooled per horizon; a forecast's quantiles are its
point forecast plus the subject's scale times the pooled errors' quantiles at that horizon
(split-conformal per horizon: distribution-free, and as wide as the errors actually were at
that horizon, not one step ahead).

:func:`auto_forecast` scores every forecaster, and the averages of the best two and three, by the
CRPS of these calibrated forecasts on the rolling origins, picks the lowest, refits on all the
training visits and forecasts: the same protocol for a recurrent twin and for LOCF.
"""

import time
from collections.abc import Mapping
from typing import NamedTuple

import numpy as np

from twinjax.eval.panel import Forecaster, Panel
from twinjax.eval.score import Forecast, pinball

# 99 quantile levels: the calibrated forecasts' resolution (CRPS from 99 pinball losses is
# within ~1% of the integral for a Gaussian)
QLEVELS = tuple(np.round(np.arange(0.01, 0.995, 0.01), 2).tolist())


def subject_scale(panel: Panel, *, strength: float = 3.0) -> np.ndarray:
    """Each subject's scale ``[N]``: the RMS of its changes between consecutive visits, shrunk
    towards the cohort's median (``strength`` pseudo-changes); the cohort's for a subject with one
    visit. Never zero."""
    m = panel.mask
    pair = m[:, 1:] & m[:, :-1]
    d2 = np.where(pair, np.diff(panel.y, axis=1) ** 2, 0.0)
    count = pair.sum(1)
    own = d2.sum(1) / np.maximum(count, 1)
    pooled = np.median(own[count > 0]) if (count > 0).any() else np.var(panel.y[m]) + 1.0
    floor = 1e-6 * (np.std(panel.y[m]) + 1e-12)
    return np.sqrt(np.maximum((count * own + strength * pooled) / (count + strength), floor**2))


class Rolling(NamedTuple):
    """Point forecasts at rolling origins: ``point``, ``y`` ``[K, N, H]``, ``mask``, and each
    origin's subject scales ``scale`` ``[K, N]``."""

    point: np.ndarray
    y: np.ndarray
    mask: np.ndarray
    scale: np.ndarray

    def errors(self) -> list[np.ndarray]:
        """Scaled errors per horizon (horizon 1 first), pooled over origins and subjects."""
        e = (self.y - self.point) / self.scale[..., None]
        return [e[..., k][self.mask[..., k]] for k in range(self.y.shape[-1])]


class Origin(NamedTuple):
    """Rolling origin ``j``: each subject's first ``n_i - j`` visits (``cut``), the times,
    values and mask of the next visits up to the horizon."""

    cut: Panel
    times: np.ndarray
    y: np.ndarray
    mask: np.ndarray


def origins_of(train: Panel, *, horizon: int, origins: int) -> list[Origin]:
    """The rolling origins ``j = 1..origins`` of ``train`` (a subject with fewer than ``j + 1``
    visits has no target at origin ``j``)."""
    n, k = train.n, np.arange(horizon)
    rows = np.arange(len(n))[:, None]
    out = []
    for j in range(1, origins + 1):
        cut = train.truncate(np.maximum(n - j, 1))
        ok = n - j >= 1
        idx = np.minimum(cut.n[:, None] + k[None], train.y.shape[1] - 1)
        mask = ok[:, None] & (cut.n[:, None] + k[None] < n[:, None])
        times = np.where(mask, train.time[rows, idx], cut.last()[0][:, None] + k[None] + 1)
        out.append(Origin(cut, times, np.where(mask, train.y[rows, idx], 0.0), mask))
    return out


def rolling(method: Forecaster, train: Panel, *, horizon: int, origins: int = 3) -> Rolling:
    """``method``'s forecasts from each subject's first ``n_i - j`` visits, ``j = 1..origins``
    (subjects with fewer than ``j + 1`` visits skip origin ``j``). A method with a ``rolling``
    attribute computes them itself (e.g. fitted once, before the first origin)."""
    if hasattr(method, "rolling"):
        return method.rolling(train, horizon=horizon, origins=origins)
    out = []
    for o in origins_of(train, horizon=horizon, origins=origins):
        point = np.asarray(method(o.cut, o.times), float)
        out.append((point, o.y, o.mask, subject_scale(o.cut)))
    return Rolling(*(np.stack(x) for x in zip(*out, strict=True)))


def horizon_quantiles(
    errors: list[np.ndarray], horizon: int, levels=QLEVELS, *, min_pool: int = 30
) -> np.ndarray:
    """Quantiles ``[Q, H]`` of the scaled errors per horizon; a horizon with fewer than
    ``min_pool`` errors (or beyond those measured) borrows all horizons' errors, each rescaled
    by sqrt(h / h_measured) (a random walk's growth)."""
    levels = np.asarray(levels)
    pooled = np.concatenate([e / np.sqrt(k + 1) for k, e in enumerate(errors)] or [np.zeros(0)])
    out = np.zeros((len(levels), horizon))
    for k in range(horizon):
        own = errors[k] if k < len(errors) else np.zeros(0)
        if len(own) >= min_pool:
            out[:, k] = np.quantile(own, levels)
        elif len(pooled):
            out[:, k] = np.quantile(pooled, levels) * np.sqrt(k + 1)
    return np.maximum.accumulate(out, axis=0)


def calibrated(point, scale, quantiles, *, y, mask, method="", subject=None, time=None):
    """The :class:`Forecast` ``point + scale * quantiles`` (``point [N, H]``, ``scale [N]``,
    ``quantiles [Q, H]`` of scaled errors)."""
    q = point[None] + scale[None, :, None] * quantiles[:, None, :]
    return Forecast(
        mean=point, quantiles=q, levels=QLEVELS, y=y, mask=mask, method=method,
        subject=subject, time=time,
    )  # fmt: skip


def _validation_crps(roll: Rolling, quantiles: np.ndarray) -> float:
    q = roll.point[None] + roll.scale[None, ..., None] * quantiles[:, None, None, :]
    crps = 2 * np.mean(pinball(q, QLEVELS, roll.y), axis=0)
    return float(crps[roll.mask].mean()) if roll.mask.any() else float("inf")


class Choice(NamedTuple):
    """What :func:`auto_forecast` chose and why: the chosen ``name`` (a method, or ``a+b``
    for the average of methods), each candidate's validation CRPS, and seconds per method."""

    name: str
    validation_crps: dict[str, float]
    seconds: dict[str, float]


def auto_forecast(
    methods: Mapping[str, Forecaster],
    train: Panel,
    times: np.ndarray,
    *,
    y: np.ndarray,
    mask: np.ndarray,
    origins: int = 3,
) -> tuple[dict[str, Forecast], Choice]:
    """Every method's calibrated forecasts at ``times`` ``[N, H]`` and the ``auto`` choice.

    Each method is run at the rolling origins (for its calibration and its validation CRPS)
    and once on all of ``train``. Candidates are the methods and the averages of the best two
    and three; ``auto`` is the candidate of lowest validation CRPS (never scored on ``y``).

    Returns:
      ``{name: Forecast}`` for every method and ``"auto"``, and the :class:`Choice`.
    """
    horizon = times.shape[1]
    rolls, points, seconds = {}, {}, {}
    for name, method in methods.items():
        start = time.perf_counter()
        rolls[name] = rolling(method, train, horizon=horizon, origins=origins)
        points[name] = np.asarray(method(train, times), float)
        seconds[name] = time.perf_counter() - start
    scores = {
        name: _validation_crps(r, horizon_quantiles(r.errors(), horizon))
        for name, r in rolls.items()
    }
    ranked = sorted(scores, key=scores.get)
    for size in (2, 3):
        if len(ranked) >= size:
            names = ranked[:size]
            combo = rolls[names[0]]._replace(point=np.mean([rolls[m].point for m in names], axis=0))
            rolls["+".join(names)] = combo
            points["+".join(names)] = np.mean([points[m] for m in names], axis=0)
            scores["+".join(names)] = _validation_crps(
                combo, horizon_quantiles(combo.errors(), horizon)
            )
    best = min(scores, key=scores.get)
    scale = subject_scale(train)
    common = dict(y=y, mask=mask, subject=train.subject, time=times)
    out = {}
    for name in [*methods, "auto"]:
        key = best if name == "auto" else name
        quantiles = horizon_quantiles(rolls[key].errors(), horizon)
        out[name] = calibrated(points[key], scale, quantiles, method=name, **common)
    return out, Choice(best, scores, seconds)
