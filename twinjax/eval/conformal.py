"""Calibrated forecasts from any point forecaster, and the choice among forecasters.

Rolling origins: for ``j = 1..K`` each subject's training visits are cut to its first
``n_i - j`` and the forecaster predicts the next visits up to ``H`` ahead (as far as the subject
has them). The errors, divided by the subject's own scale (the RMS of its visit-to-visit changes
so far, shrunk towards the cohort's), are pooled per horizon; a forecast's quantiles are its
point forecast plus the subject's scale times the pooled errors' quantiles at that horizon, less
their median (split-conformal per horizon: distribution-free, and as wide as the errors actually
were at that horizon, not one step ahead; centred on the forecaster's own point).

:func:`auto_forecast` scores every forecaster, and the average of every pair and triple of them,
by the CRPS of these calibrated forecasts on the rolling origins, picks the lowest, refits on all
the training visits and forecasts: the same protocol for a recurrent twin and for LOCF.

Irregular visits: an error is also divided by ``sqrt(elapsed / (h * gap))``
(:func:`elapsed_factor`), the time from the origin's last visit to the target over ``h`` of the
subject's median gaps, bounded to a factor 4 either way, so that an error measured over a short
gap (nlme's BodyWeight weighs its rats on days 43 and 44) is not taken for one over a whole
visit interval, and a forecast further ahead in time than ``h`` typical gaps is as much wider.
The square root is a random walk's growth of error with time; on regular visits the factor is 1.
On the bench's irregular panels (``scripts/bench_forecast.py``) it took the auto twin's 90%
coverage from 0.78 to 0.91 on BodyWeight, 0.94 to 0.91 on ChickWeight, 0.85 to 0.89 and 0.81
to 0.83 on pbcseq's log bilirubin and albumin, and its CRPS by factors 0.984, 0.984, 1.003 and
0.999; on Soybean coverage went 0.98 to 1.00 and CRPS up 3.7% (README, "Forecast skill").

Every pair and triple, not only the best two and three: on the ten panels of
``scripts/bench_forecast.py`` (README, "Forecast skill") the auto twin's CRPS relative to the
best peer's changed only where another combination won at the rolling origins, gapminder
1.000 -> 0.870 (arima+drift+last instead of arima+drift), its geometric mean over the panels
1.026 -> 1.002; 4 origins instead of 3 would add two panels within 0.95x but cost a third
more fitting time (measured on the same cached forecasts, 2026-12-07).
"""

import itertools
import time
from collections.abc import Mapping
from typing import NamedTuple

import numpy as np

from twinjax.eval.panel import Forecaster, Panel, change_scale, median_gap
from twinjax.eval.score import Forecast, pinball

# 99 quantile levels: the calibrated forecasts' resolution (CRPS from 99 pinball losses is
# within ~1% of the integral for a Gaussian)
QLEVELS = tuple(np.round(np.arange(0.01, 0.995, 0.01), 2).tolist())


def subject_scale(panel: Panel, *, strength: float = 3.0) -> np.ndarray:
    """Each subject's scale ``[N]`` (:func:`twinjax.eval.panel.change_scale`)."""
    return change_scale(panel, strength=strength)


def point_and_scale(method: Forecaster, panel: Panel, times: np.ndarray):
    """``method``'s point forecasts ``[N, H]`` and the scale its errors are divided by: its own
    predictive sd where it gives one, else the subject's change scale (broadcast over H), times
    the :func:`elapsed_factor` of ``times``."""
    out = method(panel, times)
    if isinstance(out, tuple):
        point, scale = (np.asarray(x, float) for x in out)
    else:
        point = np.asarray(out, float)
        scale = np.broadcast_to(subject_scale(panel)[:, None], point.shape)
    return point, np.maximum(scale * elapsed_factor(panel, times), 1e-12)


def elapsed_factor(
    panel: Panel, times: np.ndarray, *, power: float = 0.5, bound: float = 4.0
) -> np.ndarray:
    """``[N, H]``: ``(elapsed / (h * gap)) ** power``, the time from each subject's last visit to
    the ``h``-th target over ``h`` of its median gaps (:func:`median_gap`), bounded to
    ``[1 / bound, bound]`` before the power; 1 where a time is missing or not after the last
    visit. A forecast's errors are divided by it (module docstring)."""
    times = np.asarray(times, float)
    h = np.arange(1, times.shape[1] + 1)[None]
    with np.errstate(invalid="ignore", divide="ignore"):
        ratio = (times - panel.last()[0][:, None]) / (median_gap(panel)[:, None] * h)
    ratio = np.where(np.isfinite(ratio) & (ratio > 0), ratio, 1.0)
    return np.clip(ratio, 1.0 / bound, bound) ** power


class Rolling(NamedTuple):
    """Point forecasts at rolling origins: ``point``, ``y``, ``mask`` and the scale each error is
    divided by, ``scale``, all ``[K, N, H]``."""

    point: np.ndarray
    y: np.ndarray
    mask: np.ndarray
    scale: np.ndarray

    def errors(self) -> list[np.ndarray]:
        """Scaled errors per horizon (horizon 1 first), pooled over origins and subjects."""
        e = (self.y - self.point) / self.scale
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
        roll = method.rolling(train, horizon=horizon, origins=origins)
        factor = [elapsed_factor(o.cut, o.times) for o in origins_of(train, horizon=horizon,
                                                                     origins=origins)]  # fmt: skip
        return roll._replace(scale=roll.scale * np.stack(factor))
    out = []
    for o in origins_of(train, horizon=horizon, origins=origins):
        point, scale = point_and_scale(method, o.cut, o.times)
        out.append((point, o.y, o.mask, scale))
    return Rolling(*(np.stack(x) for x in zip(*out, strict=True)))


def horizon_quantiles(
    errors: list[np.ndarray],
    horizon: int,
    levels=QLEVELS,
    *,
    min_pool: int = 30,
    centre: bool = True,
) -> np.ndarray:
    """Quantiles ``[Q, H]`` of the scaled errors per horizon; a horizon with fewer than
    ``min_pool`` errors (or beyond those measured) borrows all horizons' errors, each rescaled
    by sqrt(h / h_measured) (a random walk's growth).

    ``centre``: the quantiles less their median, so that a calibrated forecast's median is the
    forecaster's own point and the rolling origins set only the spread. Their median error is a
    poor estimate of the bias ahead: measured on each subject's last 1-3 visits, it carries
    whatever was special there (a season, a growth spurt) into the held-out visits. On the nine
    non-seasonal panels of ``scripts/bench_forecast.py`` centring took the auto twin from 5 to 7
    panels within 1.02x the best peer's CRPS, from 4 to 5 within 0.95x, and its 90% coverage
    into 0.85-0.95 on 5 panels instead of 3 (README, "Forecast skill")."""
    levels = np.asarray(levels)
    pooled = np.concatenate([e / np.sqrt(k + 1) for k, e in enumerate(errors)] or [np.zeros(0)])
    out = np.zeros((len(levels), horizon))
    for k in range(horizon):
        own = errors[k] if k < len(errors) else np.zeros(0)
        if len(own) >= min_pool:
            out[:, k] = np.quantile(own, levels)
        elif len(pooled):
            out[:, k] = np.quantile(pooled, levels) * np.sqrt(k + 1)
    out = np.maximum.accumulate(out, axis=0)
    if centre:
        out -= np.array([np.interp(0.5, levels, out[:, k]) for k in range(horizon)])[None]
    return out


def calibrated(point, scale, quantiles, *, y, mask, method="", subject=None, time=None):
    """The :class:`Forecast` ``point + scale * quantiles`` (``point`` and ``scale`` ``[N, H]``,
    ``quantiles [Q, H]`` of scaled errors).

    Its ``mean`` is the calibrated distribution's, the average of its quantiles (equally spaced
    levels), not the raw ``point``: a bias the errors showed at the rolling origins (a growth
    that LOCF misses) moves the point forecast as it moves the intervals, so RMSE and CRPS
    judge the same forecast."""
    scale = np.broadcast_to(np.asarray(scale, float).reshape(len(point), -1), point.shape)
    q = point[None] + scale[None] * quantiles[:, None, :]
    return Forecast(
        mean=q.mean(axis=0), quantiles=q, levels=QLEVELS, y=y, mask=mask, method=method,
        subject=subject, time=time,
    )  # fmt: skip


def _validation_crps(roll: Rolling, quantiles: np.ndarray) -> float:
    q = roll.point[None] + roll.scale[None] * quantiles[:, None, None, :]
    crps = 2 * np.mean(pinball(q, QLEVELS, roll.y), axis=0)
    return float(crps[roll.mask].mean()) if roll.mask.any() else float("inf")


class Choice(NamedTuple):
    """What :func:`auto_forecast` chose and why: the chosen ``name`` (a method, or ``a+b``
    for the average of methods), each candidate's validation CRPS, seconds per method, the
    chosen candidate's per-horizon error quantiles ``[Q, H]`` at the rolling origins and the
    lean of its errors there (:func:`origin_bias`)."""

    name: str
    validation_crps: dict[str, float]
    seconds: dict[str, float]
    quantiles: np.ndarray | None = None
    bias: dict | None = None


def origin_bias(roll: Rolling) -> dict:
    """Whether a forecaster's one-step errors at the rolling origins lean one way across
    subjects: each subject's mean scaled error (truth minus forecast over the subject's scale,
    over its origins), the count above and below zero, their median, a two-sided sign test's
    p-value (without a bias, a subject's mean error is as likely above zero as below).

    The calibration is centred (:func:`horizon_quantiles`): it keeps the forecaster's point
    and takes only the spread from these errors, so a lean that lasts into the forecast period
    (growth that slows, as in R's Loblolly pines) is corrected by neither the point nor the
    interval; a report says so when the test rejects.
    """
    from scipy.stats import binomtest

    e = ((roll.y - roll.point) / roll.scale)[..., 0]
    seen = roll.mask[..., 0]
    count = seen.sum(axis=0)
    with np.errstate(invalid="ignore"):
        per_subject = np.where(seen, e, 0.0).sum(axis=0) / count
    per_subject = per_subject[count > 0]
    above, below = int((per_subject > 0).sum()), int((per_subject < 0).sum())
    p = binomtest(above, above + below).pvalue if above + below else 1.0
    median = float(np.median(per_subject)) if len(per_subject) else 0.0
    pooled = e[seen]
    half = float(np.subtract(*np.quantile(pooled, [0.95, 0.05])) / 2) if pooled.size else 0.0
    return {"subjects": int(len(per_subject)), "above": above, "below": below,
            "median": median, "p_value": float(p), "half_width_90": half}  # fmt: skip


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
    and once on all of ``train``. Candidates are the methods and the averages of every pair
    and triple of them (named in order of their validation CRPS); ``auto`` is the candidate of
    lowest validation CRPS (never scored on ``y``).

    Returns:
      ``{name: Forecast}`` for every method and ``"auto"``, and the :class:`Choice`.
    """
    horizon = times.shape[1]
    rolls, points, seconds = {}, {}, {}
    for name, method in methods.items():
        start = time.perf_counter()
        rolls[name] = rolling(method, train, horizon=horizon, origins=origins)
        points[name] = point_and_scale(method, train, times)
        seconds[name] = time.perf_counter() - start
    scores = {
        name: _validation_crps(r, horizon_quantiles(r.errors(), horizon))
        for name, r in rolls.items()
    }
    ranked = sorted(scores, key=scores.get)
    for names in (c for size in (2, 3) for c in itertools.combinations(ranked, size)):
        combo = combine([rolls[m] for m in names])
        name = "+".join(names)
        rolls[name] = combo
        points[name] = tuple(np.mean([points[m][k] for m in names], axis=0) for k in (0, 1))
        scores[name] = _validation_crps(combo, horizon_quantiles(combo.errors(), horizon))
    best = min(scores, key=scores.get)
    common = dict(y=y, mask=mask, subject=train.subject, time=times)
    out = {}
    for name in [*methods, "auto"]:
        key = best if name == "auto" else name
        quantiles = horizon_quantiles(rolls[key].errors(), horizon)
        out[name] = calibrated(*points[key], quantiles, method=name, **common)
    chosen = horizon_quantiles(rolls[best].errors(), horizon)
    return out, Choice(best, scores, seconds, chosen, origin_bias(rolls[best]))


def combine(rolls: list[Rolling]) -> Rolling:
    """The average of several forecasters at the same rolling origins: the mean of their
    points and of their scales."""
    return rolls[0]._replace(
        point=np.mean([r.point for r in rolls], axis=0),
        scale=np.mean([r.scale for r in rolls], axis=0),
    )
