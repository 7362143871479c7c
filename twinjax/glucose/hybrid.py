"""Twin (c): the mechanistic twin plus a learned residual.

The mechanistic twin (b) is wrong wherever its fixed parameters, its meal timing or its model
are: its errors persist for hours after a meal and repeat from day to day. A linear model per
patient and horizon learns them from the training days: the target is the CGM reading minus (b)'s
forecast mean ``h`` minutes ahead; the features (:func:`residual_features`) are the residual of
(b)'s posterior-mean path at the origin and 15 and 30 minutes before, (b)'s predicted change, its
path's level, the CGM's last 15-minute change, and the carbohydrates and insulin recorded in the
last two hours and announced for the forecast's window.

The coefficients are hierarchical ridge: pooled ones fitted on every patient, then each
patient's shrunk toward them, ``w_i = argmin |X_i w - t_i|^2 + lambda |w - w_pool|^2`` (closed
form). Each patient's ``lambda`` (or the pooled coefficients alone, or no correction at all,
where the residual model does not help) is chosen per horizon on held-back training days (the
last ``calib_days``), on which each patient's 5% and 95% error quantiles also give the 90%
interval (split conformal: the fit never sees those days; the choice among 7 candidates on the
same days makes the quantiles slightly optimistic). The forecast is (b)'s mean plus the
predicted residual.
"""

from typing import NamedTuple

import numpy as np
from jaxtyping import Float

from twinjax.glucose.intervals import day_origins
from twinjax.glucose.mechanistic import forecast_mechanistic
from twinjax.glucose.records import Records
from twinjax.glucose.scoring import HORIZONS, LEVEL, Forecasts, targets
from twinjax.glucose.twin import MechanisticTwin

FEATURES = ("r0", "r15", "r30", "mech_change", "mech_level", "cgm_slope", "carbs_past",
            "carbs_ahead", "insulin_past", "insulin_ahead")  # fmt: skip
LAMBDAS = (1.0, 10.0, 100.0, 1e3, 1e4)  # per-patient shrinkage toward the pooled coefficients
_LAG = 5  # readings per 15 minutes at the 3-minute step (rescaled to the records' step)


class HybridTwin(NamedTuple):
    """The learned residual: per patient and horizon, ridge coefficients on the standardized
    :data:`FEATURES` (plus an intercept, last) and the held-back days' error quantiles."""

    coef: Float[np.ndarray, "patients horizons features"]
    centre: Float[np.ndarray, "horizons features"]  # feature means (pooled, training days)
    spread: Float[np.ndarray, "horizons features"]  # feature SDs
    lo: Float[np.ndarray, "patients horizons"]  # 5% quantile of the held-back errors
    hi: Float[np.ndarray, "patients horizons"]  # 95%
    lam: Float[np.ndarray, "patients horizons"]  # chosen shrinkage (inf: pooled, nan: none)


def _window_sum(per_cell: np.ndarray, at: np.ndarray, start: int, stop: int) -> np.ndarray:
    """Sum of ``per_cell`` over cells ``[o + start, o + stop)`` for each origin (clipped at 0)."""
    c = np.concatenate([np.zeros((per_cell.shape[0], 1)), np.cumsum(per_cell, axis=1)], axis=1)
    hi = np.clip(at + stop, 0, per_cell.shape[1])
    lo = np.clip(at + start, 0, per_cell.shape[1])
    return c[:, hi] - c[:, lo]


def residual_features(recs: Records, gbar: np.ndarray, mech: np.ndarray, at: np.ndarray,
                      k: int) -> np.ndarray:  # fmt: skip
    """``[patients, origins, len(FEATURES)]`` at the origins ``at`` for ``k`` readings ahead.

    ``gbar``: (b)'s posterior-mean path ``[patients, cells]``; ``mech``: (b)'s forecast mean
    ``k`` readings ahead ``[patients, origins]``.
    """
    y = np.asarray(recs.cgm, np.float64)
    lag = max(int(round(_LAG * 3 / recs.step)), 1)
    r = y - gbar
    past = lambda a, d: a[:, np.maximum(at - d, 0)]
    carbs = recs.carbs.reshape(recs.carbs.shape[0], -1, int(recs.step)).sum(-1)
    insulin = recs.insulin.reshape(recs.insulin.shape[0], -1, int(recs.step)).sum(-1)
    two_hours = 8 * lag
    cols = [
        r[:, at], past(r, lag), past(r, 2 * lag), mech - y[:, at], gbar[:, at + k] - 140.0,
        y[:, at] - past(y, lag),
        _window_sum(carbs, at, -two_hours, 0), _window_sum(carbs, at, 0, k),
        _window_sum(insulin, at, -two_hours, 0), _window_sum(insulin, at, 0, k),
    ]  # fmt: skip
    return np.stack(cols, -1)


def _design(recs, twin, paths, at):
    """Per horizon: features and targets (reading minus (b)'s mean) at the origins ``at``."""
    gbar = paths.mean(1)
    mech = forecast_mechanistic(None, twin, recs, at, paths=paths, samples=0).mean
    y = targets(recs.cgm, at, step=recs.step)
    out = []
    for j, h in enumerate(HORIZONS):
        k = int(round(h / recs.step))
        out.append((residual_features(recs, gbar, mech[..., j], at, k), y[..., j] - mech[..., j],
                    mech[..., j]))  # fmt: skip
    return out


def _ridge(x, t, lam, prior):
    """Per patient ``argmin |x w - t|^2 + lam |w - prior|^2`` (``x``: ``[patients, n, f]``)."""
    f = x.shape[-1]
    a = np.einsum("pnf,png->pfg", x, x) + lam * np.eye(f)
    b = np.einsum("pnf,pn->pf", x, t) + lam * prior
    return np.linalg.solve(a, b[..., None])[..., 0]


def _with_intercept(x, centre, spread):
    z = (x - centre) / spread
    return np.concatenate([z, np.ones((*z.shape[:-1], 1))], -1)


def fit_hybrid(
    twin: MechanisticTwin,
    recs: Records,
    paths: Float[np.ndarray, "patients draws cells"],
    *,
    train_days: float,
    start_days: float = 0.0,
    calib_days: float = 2.0,
    stride: int = 3,
    lambdas: tuple[float, ...] = LAMBDAS,
) -> HybridTwin:
    """Learns each patient's residual on days ``[start_days, train_days - calib_days)`` (origins
    every ``stride`` readings), chooses ``lambda`` and the interval on the last ``calib_days``.

    Args:
        twin: the mechanistic twin (b).
        recs: the records (all days; only the training days are read).
        paths: ``twin_paths(twin, recs)``.
        train_days: the training days (``scoring``'s protocol).
        start_days: the first day used (e.g. after the days (b) was fitted on, whose in-sample
            residuals are smaller than on new days).
        calib_days: the held-back training days.
        stride: readings between training origins.
        lambdas: the shrinkage values tried.
    """
    split = train_days - calib_days
    if split <= start_days:
        raise ValueError(f"no days to learn from: start {start_days}, held back from day {split}")
    n_cells = recs.cgm.shape[1]
    every = stride * recs.step
    fit_at = day_origins(
        n_cells, step=recs.step, start_days=start_days, end_days=split, every=every
    )
    cal_at = day_origins(n_cells, step=recs.step, start_days=split, end_days=train_days,
                         every=recs.step)  # fmt: skip
    fit_d, cal_d = _design(recs, twin, paths, fit_at), _design(recs, twin, paths, cal_at)
    coefs, centres, spreads, los, his, lams = [], [], [], [], [], []
    for (x, t, _), (xc, tc, _) in zip(fit_d, cal_d, strict=True):
        centre, spread = x.mean((0, 1)), x.std((0, 1)) + 1e-6
        z, zc = _with_intercept(x, centre, spread), _with_intercept(xc, centre, spread)
        n = z.shape[0] * z.shape[1]
        pooled = _ridge(z.reshape(1, n, -1), t.reshape(1, n), 1.0, 0.0)[0]
        fits = [_ridge(z, t, lam, pooled) for lam in lambdas]
        fits += [np.broadcast_to(pooled, fits[0].shape), np.zeros_like(fits[0])]
        err = [np.mean((np.einsum("pnf,pf->pn", zc, w) - tc) ** 2, axis=1) for w in fits]
        best = np.argmin(np.stack(err), axis=0)  # per patient
        coef = np.stack(fits)[best, np.arange(len(best))]
        resid = tc - np.einsum("pnf,pf->pn", zc, coef)
        q = np.quantile(resid, [(1 - LEVEL) / 2, (1 + LEVEL) / 2], axis=1)
        coefs.append(coef), centres.append(centre), spreads.append(spread)
        los.append(q[0]), his.append(q[1])
        lams.append(np.asarray([*lambdas, np.inf, np.nan])[best])
    return HybridTwin(np.stack(coefs, 1), np.stack(centres), np.stack(spreads),
                      np.stack(los, 1), np.stack(his, 1), np.stack(lams, 1))  # fmt: skip


def forecast_hybrid(
    hybrid: HybridTwin,
    twin: MechanisticTwin,
    recs: Records,
    paths: Float[np.ndarray, "patients draws cells"],
    at: np.ndarray,
) -> Forecasts:
    """(b)'s forecast mean plus the learned residual, with the held-back days' error quantiles
    as the 90% interval."""
    mean, lo, hi = [], [], []
    for j, (x, _, mech) in enumerate(_design(recs, twin, paths, np.asarray(at))):
        z = _with_intercept(x, hybrid.centre[j], hybrid.spread[j])
        m = mech + np.einsum("pnf,pf->pn", z, hybrid.coef[:, j])
        mean.append(m), lo.append(m + hybrid.lo[:, j, None]), hi.append(m + hybrid.hi[:, j, None])
    return Forecasts(*(np.stack(a, -1) for a in (mean, lo, hi)))
