"""Panels of irregular visits and the forecasters a user would otherwise pick.

A :class:`Panel` holds each subject's visits (times and values of one stream, in time order),
padded to a rectangle. The protocol of :func:`holdout` keeps back each subject's last ``h``
visits; a point forecaster is a function ``(train: Panel, times [N, H]) -> mean [N, H]``:

- ``last``: the last observed value carried forward (LOCF);
- ``drift``: the last value plus the subject's mean change per unit time so far;
- ``seasonal``: the value one ``period`` of visits before (when the panel has a period);
- ``mixed``: a linear mixed model (statsmodels ``MixedLM``, REML): random intercept and slope
  in time per subject, the forecast its fixed part plus the subject's BLUP;
- ``ets``, ``arima``: per-subject AutoETS / AutoARIMA of statsforecast on the visit sequence,
  for panels whose median series is long enough and subjects with at least ``min_length`` visits (LOCF for the others, and where a
  fit fails: statsforecast's ``fallback_model``).

A forecaster may also return its own predictive sd ``[N, H]`` (``(mean, sd)``: the mixed model's
conditional sd, ETS/ARIMA's model sd); :mod:`twinjax.eval.conformal` then calibrates the errors
divided by it, else by the subject's change scale.
"""

import logging
import warnings
from collections.abc import Callable
from typing import NamedTuple

import numpy as np
import pandas as pd
from jaxtyping import Bool, Float, Int

log = logging.getLogger(__name__)


class Panel(NamedTuple):
    """Each subject's visits, left-aligned and padded: ``time``, ``y`` ``[N, T]`` (visit ``j``
    of subject ``i`` is ``[i, j]`` for ``j < n[i]``), ``subject`` ids ``[N]``, ``period`` the
    seasonal period in visits (0: none)."""

    subject: np.ndarray
    time: Float[np.ndarray, "n t"]
    y: Float[np.ndarray, "n t"]
    n: Int[np.ndarray, " n"]
    period: int = 0

    @property
    def mask(self) -> Bool[np.ndarray, "n t"]:
        return np.arange(self.y.shape[1])[None] < self.n[:, None]

    def truncate(self, n) -> "Panel":
        """Each subject's first ``n[i]`` visits (never more than it has)."""
        return self._replace(n=np.minimum(np.asarray(n), self.n))

    def take(self, index) -> "Panel":
        index = np.asarray(index)
        return self._replace(
            subject=self.subject[index], time=self.time[index], y=self.y[index], n=self.n[index]
        )

    def last(self) -> tuple[np.ndarray, np.ndarray]:
        """Each subject's last visit: ``(time, value)`` ``[N]`` each (NaN for no visit)."""
        idx = np.maximum(self.n - 1, 0)
        rows = np.arange(len(self.n))
        seen = self.n > 0
        return (
            np.where(seen, self.time[rows, idx], np.nan),
            np.where(seen, self.y[rows, idx], np.nan),
        )

    def long(self) -> pd.DataFrame:
        """The visits as a long table ``subject, time, y`` (in visit order)."""
        m = self.mask
        rows = np.nonzero(m)
        return pd.DataFrame(
            {"subject": self.subject[rows[0]], "time": self.time[m], "y": self.y[m],
             "visit": rows[1]}
        )  # fmt: skip


def panel_from_long(
    frame: pd.DataFrame, *, subject: str, time: str, value: str, period: int = 0
) -> Panel:
    """A :class:`Panel` of ``frame``'s rows (one visit a row; sorted by subject and time).

    Raises:
        ValueError: a missing column, or a row without a time or value (naming the rows), or
            two visits of a subject at one time.
    """
    missing = [c for c in (subject, time, value) if c not in frame.columns]
    if missing:
        raise ValueError(f"columns {missing} are not in the table: {list(frame.columns)}")
    df = frame[[subject, time, value]].copy()
    bad = df[time].isna() | df[value].isna() | ~np.isfinite(df[value].astype(float))
    if bad.any():
        rows = list(df.index[bad][:5])
        raise ValueError(f"{int(bad.sum())} rows have no {time!r} or {value!r} (rows {rows}): "
                         "remove them or fill them first")  # fmt: skip
    dup = df.duplicated([subject, time])
    if dup.any():
        rows = list(df.index[dup][:5])
        raise ValueError(f"subjects with two visits at one {time!r} (rows {rows})")
    df = df.sort_values([subject, time], kind="stable")
    ids, counts = np.unique(df[subject].to_numpy(), return_counts=True)
    codes = np.searchsorted(ids, df[subject].to_numpy())
    pos = np.arange(len(df)) - np.repeat(np.cumsum(counts) - counts, counts)
    shape = (len(ids), int(counts.max()))
    t, y = np.zeros(shape), np.zeros(shape)
    t[codes, pos], y[codes, pos] = df[time].to_numpy(float), df[value].to_numpy(float)
    return Panel(ids, t, y, counts.astype(int), period)


class Holdout(NamedTuple):
    """What :func:`holdout` keeps back: times and values ``[N, H]`` with the mask of visits."""

    train: Panel
    time: Float[np.ndarray, "n h"]
    y: Float[np.ndarray, "n h"]
    mask: Bool[np.ndarray, "n h"]


def holdout(panel: Panel, *, h: int = 2, short: int = 5) -> Holdout:
    """Keeps back each subject's last ``h`` visits (1 for a series shorter than ``short``).

    Raises:
        ValueError: a subject with fewer than two visits (naming the first few).
    """
    few = panel.subject[panel.n < 2]
    if len(few):
        raise ValueError(f"{len(few)} subjects have fewer than 2 visits (e.g. {list(few[:5])}): "
                         "nothing to learn from and forecast")  # fmt: skip
    keep = np.where(panel.n < short, 1, h)
    keep = np.minimum(keep, panel.n - 1)
    start = panel.n - keep
    k = np.arange(h)
    idx = np.minimum(start[:, None] + k[None], panel.y.shape[1] - 1)
    rows = np.arange(len(panel.n))[:, None]
    mask = k[None] < keep[:, None]
    return Holdout(
        panel.truncate(start),
        np.where(mask, panel.time[rows, idx], np.nan),
        np.where(mask, panel.y[rows, idx], 0.0),
        mask,
    )


def median_gap(panel: Panel) -> np.ndarray:
    """Each subject's median time between consecutive visits ``[N]`` (the cohort's median gap for
    a subject with one visit, 1 when no subject has two)."""
    gaps = np.where(panel.mask[:, 1:] & panel.mask[:, :-1], np.diff(panel.time, axis=1), np.nan)
    cohort = np.nanmedian(gaps) if np.isfinite(gaps).any() else 1.0
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN rows: one visit
        own = np.nanmedian(gaps, axis=1)
    return np.where(np.isfinite(own) & (own > 0), own, cohort)


def future_times(panel: Panel, steps: int) -> np.ndarray:
    """The next ``steps`` times after each subject's last visit, spaced by its median gap
    (:func:`median_gap`)."""
    return panel.last()[0][:, None] + median_gap(panel)[:, None] * np.arange(1, steps + 1)[None]


Forecaster = Callable[[Panel, np.ndarray], np.ndarray]

# visits the median series needs for ETS/ARIMA to be candidates: on wages' 5 training visits
# AutoARIMA won the rolling origins (CRPS 0.101) and lost the held-out visits by 2x (0.200 vs
# LOCF's 0.111). Within such a panel a subject needs 5 (the rolling origins cut 1-3 visits).
LONG = 10
# statsforecast's worker processes for ETS/ARIMA (-1: one per core)
N_JOBS = -1


def last_value(train: Panel, times: np.ndarray) -> np.ndarray:
    return np.broadcast_to(train.last()[1][:, None], times.shape).copy()


def drift(train: Panel, times: np.ndarray) -> np.ndarray:
    t_last, y_last = train.last()
    t0, y0 = train.time[:, 0], train.y[:, 0]
    span = t_last - t0
    slope = np.where(span > 0, (y_last - y0) / np.where(span > 0, span, 1.0), 0.0)
    return y_last[:, None] + slope[:, None] * (times - t_last[:, None])


def seasonal(train: Panel, times: np.ndarray) -> np.ndarray:
    """The value ``period`` visits before each target visit (LOCF where there is none)."""
    p = train.period
    if p <= 0:
        raise ValueError("seasonal naive needs the panel's period (visits per season)")
    h = times.shape[1]
    k = np.arange(1, h + 1)
    back = train.n[:, None] - p + (k[None] - 1) % p  # visit index one season before
    rows = np.arange(len(train.n))[:, None]
    ok = back >= 0
    seen = train.y[rows, np.clip(back, 0, train.y.shape[1] - 1)]
    return np.where(ok, seen, train.last()[1][:, None])


def mixed_model(train: Panel, times: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """statsmodels ``MixedLM`` (REML) of ``y ~ 1 + t`` with a random intercept and slope per
    subject (a random intercept only if that fit fails); times centred and scaled."""
    import statsmodels.api as sm
    from statsmodels.tools.sm_exceptions import ConvergenceWarning

    df = train.long()
    centre, spread = df.time.mean(), df.time.std() or 1.0
    tt = (df.time.to_numpy() - centre) / spread
    exog = np.column_stack([np.ones(len(tt)), tt])
    groups = df.subject.to_numpy()
    result = None
    for re in (exog, exog[:, :1]):
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", ConvergenceWarning)
                warnings.simplefilter("ignore", RuntimeWarning)
                warnings.simplefilter("ignore", UserWarning)
                model = sm.MixedLM(df.y.to_numpy(), exog, groups=groups, exog_re=re)
                result = model.fit(reml=True, method=["lbfgs", "powell"])
            if np.all(np.isfinite(result.fe_params)):
                break
        except (np.linalg.LinAlgError, ValueError):
            result = None
    if result is None:
        log.warning("the mixed model did not fit: last value carried forward instead")
        sd = change_scale(train)[:, None] * np.sqrt(np.arange(1, times.shape[1] + 1))[None]
        return last_value(train, times), sd
    beta, sigma2 = np.asarray(result.fe_params), float(result.scale)
    D = np.asarray(result.cov_re)
    q = D.shape[0]
    effects = result.random_effects
    b = np.stack([np.asarray(effects.get(s, np.zeros(q)))[:q] for s in train.subject])
    tf = (times - centre) / spread
    point = beta[0] + b[:, :1] + beta[1] * tf + (b[:, 1:] * tf if q == 2 else 0.0)
    # conditional sd: residual variance plus the random effects' posterior variance given the
    # subject's rows (fixed effects taken as known)
    d_inv = np.linalg.pinv(D)
    var = np.zeros(times.shape)
    for i in range(len(train.n)):
        zi = tt[groups == train.subject[i]]
        Z = np.column_stack([np.ones(len(zi)), zi])[:, :q]
        post = np.linalg.pinv(d_inv + Z.T @ Z / sigma2)
        Zf = np.column_stack([np.ones(times.shape[1]), np.nan_to_num(tf[i])])[:, :q]
        var[i] = sigma2 + np.einsum("hi,ij,hj->h", Zf, post, Zf)
    return point, np.sqrt(np.maximum(var, 1e-12))


def _statsforecast(model: str, train: Panel, times: np.ndarray, min_length: int):
    """Per-subject AutoETS/AutoARIMA on the visit sequence: the point forecast and the model's
    own predictive sd (its 68.27% interval's half-width); LOCF with the subject's change scale
    times sqrt(h) below ``min_length`` visits."""
    from statsforecast import StatsForecast
    from statsforecast.models import AutoARIMA, AutoETS, Naive

    h = times.shape[1]
    out = last_value(train, times)
    sd = change_scale(train)[:, None] * np.sqrt(np.arange(1, h + 1))[None]
    long_enough = np.nonzero(train.n >= min_length)[0]
    if len(long_enough) == 0:
        return out, sd
    sub = train.take(long_enough)
    visits = sub.long()
    df = pd.DataFrame({"unique_id": np.repeat(np.arange(len(long_enough)), sub.n),
                       "ds": visits.visit.to_numpy(), "y": visits.y.to_numpy()})  # fmt: skip
    season = train.period if train.period > 1 else 1
    if model == "ets":
        fitted = AutoETS(season_length=season)
    else:
        fitted = AutoARIMA(season_length=season)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        sf = StatsForecast(models=[fitted], freq=1, n_jobs=N_JOBS, fallback_model=Naive())
        fc = sf.forecast(df=df, h=h, level=[68.27])
    alias = str(fitted)
    values = fc[alias].to_numpy().reshape(len(long_enough), h)
    half = (fc[f"{alias}-hi-68.27"] - fc[f"{alias}-lo-68.27"]).to_numpy().reshape(-1, h) / 2
    out[long_enough] = np.where(np.isfinite(values), values, out[long_enough])
    ok = np.isfinite(half) & (half > 0)
    sd[long_enough] = np.where(ok, half, sd[long_enough])
    return out, sd


def change_scale(panel: Panel, *, strength: float = 3.0) -> np.ndarray:
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


def ets(train: Panel, times: np.ndarray, *, min_length: int = 5):
    return _statsforecast("ets", train, times, min_length)


def arima(train: Panel, times: np.ndarray, *, min_length: int = 5):
    return _statsforecast("arima", train, times, min_length)


def pooled_ar(train: Panel, times: np.ndarray, *, ridge: float = 1.0) -> np.ndarray:
    """One linear model of the changes ahead learnt from every subject at once (a global
    forecaster, as the deep global models learn across series, in closed form): for each
    horizon k (in visits), ridge regression of ``(y[j + k] - y[j]) / s`` on the last two changes
    ``(y[j] - y[j - 1]) / s``, ``(y[j - 1] - y[j - 2]) / s`` (0 where there is none), the mean
    change so far ``(y[j] - y[0]) / (j s)`` and an intercept, pooled over every subject and
    visit ``j`` with a known change and a visit ``j + k`` (``s``: the subject's
    :func:`change_scale`, so that subjects on different scales share coefficients). Forecast:
    ``y_last + s * prediction``; a subject with one visit keeps its last value."""
    y, n = np.where(train.mask, train.y, 0.0), train.n
    rows, t = y.shape
    s = change_scale(train)[:, None]
    j = np.arange(t)[None]
    d1 = np.where((j >= 1) & (j < n[:, None]), np.diff(y, axis=1, prepend=y[:, :1]), 0.0) / s
    d2 = np.concatenate([np.zeros((rows, 1)), d1[:, :-1]], axis=1)
    mean = np.where(j >= 1, (y - y[:, :1]) / np.maximum(j, 1), 0.0) / s
    features = np.stack([np.ones_like(d1), d1, d2, mean], axis=-1)  # [N, T, 4]
    last = np.maximum(n - 1, 0)
    at_last = features[np.arange(rows), last]  # [N, 4]
    out = np.repeat(train.last()[1][:, None], times.shape[1], axis=1)
    for k in range(1, times.shape[1] + 1):
        ok = (j >= 1) & (j + k < n[:, None])
        if ok.sum() < 8:  # too few pairs to learn from: keep the last value
            continue
        ahead = np.concatenate([y[:, k:], np.zeros((rows, k))], axis=1)
        target = ((ahead - y) / s)[ok]
        x = features[ok]
        beta = np.linalg.solve(x.T @ x + ridge * np.eye(x.shape[1]), x.T @ target)
        out[:, k - 1] = np.where(n >= 2, out[:, k - 1] + s[:, 0] * (at_last @ beta), out[:, k - 1])
    return out


def has_statsforecast() -> bool:
    try:
        import statsforecast  # noqa: F401
    except ImportError:
        return False
    return True


BASELINES = ("last", "drift", "seasonal", "mixed", "ets", "arima")  # the default candidates
# every forecaster a panel can be given (model.candidates): the defaults and the pooled AR
KNOWN = (*BASELINES, "pooled")


def forecasters(panel: Panel, families=BASELINES, *, gate: bool = True) -> dict[str, Forecaster]:
    """The point forecasters of ``families`` that apply to ``panel``: ETS/ARIMA where
    statsforecast is installed and the median series has :data:`LONG` visits (a shorter series
    gets LOCF from them; ``gate=False``: whatever the lengths, as for a saved choice), seasonal
    naive where the panel has a period."""
    unknown = sorted(set(families) - set(KNOWN))
    if unknown:
        raise ValueError(f"unknown forecasters {unknown}: choose from {list(KNOWN)}")
    out: dict[str, Forecaster] = {"last": last_value, "drift": drift, "mixed": mixed_model,
                                  "pooled": pooled_ar}  # fmt: skip
    if panel.period > 0:
        out["seasonal"] = seasonal
    if has_statsforecast() and (np.median(panel.n) >= LONG or not gate):
        out["ets"], out["arima"] = ets, arima
    return {name: out[name] for name in families if name in out}
