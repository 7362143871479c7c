"""One forecast type and one place that scores it.

Every forecaster in twinjax (recurrent twins, Bayesian twins, the baselines a user would
otherwise pick) hands back a :class:`Forecast`: for N individuals at H horizons, the predictive
distribution of one stream as Gaussian ``mean``/``scale``, as ``draws``, or as ``quantiles`` at
``levels``; with the observed value, a mask of the points that count, subject ids and times.
:func:`score` gives RMSE, MAE, CRPS, pinball loss, 50%/90% coverage and width and the PIT
(probability integral transform), pooled, per horizon, per individual and per subgroup, so a new
metric is one edit and every experiment gets it.

CRPS (the continuous ranked probability score, Gneiting & Raftery 2007) is in the data's units
and rewards sharpness and calibration together: for a Gaussian it has a closed form; for draws the
plug-in estimator E|X - y| - E|X - X'| / 2 over the empirical distribution; for quantiles twice the
mean pinball loss over the levels (exact as the levels fill (0, 1)).
"""

import dataclasses
from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd
from jaxtyping import ArrayLike, Bool, Float
from scipy.special import ndtr, ndtri

# the quantile levels a forecast is summarized at (19 levels: 5%, 10%, ..., 95%)
LEVELS = tuple(np.round(np.arange(0.05, 0.951, 0.05), 2).tolist())
_SQRT_PI = float(np.sqrt(np.pi))
# the columns of every forecasts.csv (recurrent, auto and ``Twins.forecast``), in this order
FORECAST_COLUMNS = (
    "subject_id", "horizon", "time", "variable", "mean", "q05", "q25", "q50", "q75", "q95"
)  # fmt: skip


@dataclasses.dataclass(frozen=True)
class Forecast:
    """Forecasts of one stream for ``N`` individuals at ``H`` horizons (all in data units).

    Exactly one predictive form is given: ``scale`` (Gaussian with ``mean``), ``draws``
    ``[S, N, H]`` (samples), or ``quantiles`` ``[Q, N, H]`` at ``levels`` (increasing, in (0, 1)).
    ``mean`` is the point forecast in every case. ``y`` holds the observed values (anything where
    ``mask`` is False), ``subject`` the ids ``[N]``, ``time`` the forecast times ``[N, H]``.
    """

    mean: Float[np.ndarray, "n h"]
    y: Float[np.ndarray, "n h"]
    mask: Bool[np.ndarray, "n h"]
    scale: Float[np.ndarray, "n h"] | None = None
    draws: Float[np.ndarray, "s n h"] | None = None
    quantiles: Float[np.ndarray, "q n h"] | None = None
    levels: tuple[float, ...] | None = None
    subject: np.ndarray | None = None
    time: Float[np.ndarray, "n h"] | None = None
    method: str = ""

    def __post_init__(self):
        given = [f for f in ("scale", "draws", "quantiles") if getattr(self, f) is not None]
        if len(given) != 1:
            raise ValueError(f"a Forecast needs exactly one of scale, draws, quantiles: {given}")
        shape = np.shape(self.mean)
        for name in ("y", "mask", "scale", "time"):
            value = getattr(self, name)
            if value is not None and np.shape(value) != shape:
                raise ValueError(f"Forecast.{name} has shape {np.shape(value)}, mean {shape}")
        for name in ("draws", "quantiles"):
            value = getattr(self, name)
            if value is not None and np.shape(value)[1:] != shape:
                raise ValueError(f"Forecast.{name} has shape {np.shape(value)}; [*, {shape}]")
        if self.quantiles is not None:
            levels = np.asarray(self.levels, float)
            if len(levels) != len(self.quantiles) or np.any(np.diff(levels) <= 0):
                raise ValueError("Forecast.levels: one increasing level in (0, 1) per quantile")
            if levels.min() <= 0 or levels.max() >= 1:
                raise ValueError("Forecast.levels must lie in (0, 1)")

    @classmethod
    def from_intervals(cls, mean, intervals: Mapping[float, tuple], **fields) -> "Forecast":
        """A forecast given as central intervals ``{level: (lo, hi)}`` (each ``[N, H]``): their
        ends are its quantiles at ``0.5 -+ level / 2``; ``fields`` are ``y``, ``mask`` and the
        rest of the constructor's.

        Example:
            >>> fc = Forecast.from_intervals(np.zeros((1, 1)), {0.9: (-np.ones((1, 1)),
            ...     np.ones((1, 1)))}, y=np.zeros((1, 1)), mask=np.ones((1, 1), bool))
            >>> fc.levels, fc.interval(0.9)[1].item()
            ((0.05, 0.95), 1.0)
        """
        ends = {}
        for level, (lo, hi) in intervals.items():
            ends[round(0.5 - level / 2, 12)], ends[round(0.5 + level / 2, 12)] = lo, hi
        levels = tuple(sorted(ends))
        q = np.stack([np.asarray(ends[a], np.float64) for a in levels])
        return cls(mean=np.asarray(mean, np.float64), quantiles=q, levels=levels, **fields)

    @property
    def shape(self) -> tuple[int, int]:
        return tuple(np.shape(self.mean))

    def quantile(self, levels: Sequence[float]) -> Float[np.ndarray, "q n h"]:
        """Predictive quantiles ``[len(levels), N, H]`` (interpolated between given levels)."""
        levels = np.asarray(levels, float)
        if self.scale is not None:
            z = ndtri(levels)[:, None, None]
            return np.asarray(self.mean)[None] + z * np.asarray(self.scale)[None]
        if self.draws is not None:
            return np.quantile(np.asarray(self.draws, np.float64), levels, axis=0)
        given, q = np.asarray(self.levels, float), np.asarray(self.quantiles, np.float64)
        flat = q.reshape(len(given), -1)
        out = np.stack([np.interp(levels, given, flat[:, j]) for j in range(flat.shape[1])], 1)
        return out.reshape((len(levels),) + self.shape)

    def interval(self, level: float) -> tuple[np.ndarray, np.ndarray]:
        """The central ``level`` interval ``(lo, hi)``, each ``[N, H]``."""
        lo, hi = self.quantile([0.5 - level / 2, 0.5 + level / 2])
        return lo, hi

    def take(self, index) -> "Forecast":
        """The forecasts of individuals ``index`` only."""
        index = np.asarray(index)
        rows = lambda x: None if x is None else np.asarray(x)[index]
        cols = lambda x: None if x is None else np.asarray(x)[:, index]
        return dataclasses.replace(
            self,
            mean=rows(self.mean), y=rows(self.y), mask=rows(self.mask), scale=rows(self.scale),
            draws=cols(self.draws), quantiles=cols(self.quantiles), subject=rows(self.subject),
            time=rows(self.time),
        )  # fmt: skip

    def frame(self) -> pd.DataFrame:
        """One row per individual and horizon: subject_id, horizon (1-based), time, y, observed,
        mean and the 5/25/50/75/95% quantiles (the columns of every ``forecasts.csv``)."""
        n, h = self.shape
        q = self.quantile((0.05, 0.25, 0.5, 0.75, 0.95))
        subject = np.arange(n) if self.subject is None else np.asarray(self.subject, object)
        out = {
            "subject_id": np.repeat(subject, h),
            "horizon": np.tile(np.arange(1, h + 1), n),
            "time": np.full(n * h, np.nan) if self.time is None else np.ravel(self.time),
            "y": np.where(np.ravel(self.mask), np.ravel(self.y), np.nan),
            "observed": np.ravel(self.mask),
            "mean": np.ravel(self.mean),
        }
        for level, values in zip((5, 25, 50, 75, 95), q, strict=True):
            out[f"q{level:02d}"] = np.ravel(values)
        return pd.DataFrame(out)


def crps_gaussian(mean, scale, y) -> np.ndarray:
    """Closed-form CRPS of N(mean, scale^2) at ``y`` (elementwise)."""
    scale = np.asarray(scale, np.float64)
    z = (np.asarray(y, np.float64) - mean) / scale
    pdf = np.exp(-0.5 * z**2) / np.sqrt(2 * np.pi)
    return scale * (z * (2 * ndtr(z) - 1) + 2 * pdf - 1 / _SQRT_PI)


def crps_draws(draws, y) -> np.ndarray:
    """Plug-in CRPS of the empirical distribution of ``draws`` (axis 0) at ``y``:
    E|X - y| - E|X - X'| / 2, with E|X - X'| from the sorted draws in O(S log S)."""
    x = np.sort(np.asarray(draws, np.float64), axis=0)
    s = x.shape[0]
    first = np.mean(np.abs(x - np.asarray(y, np.float64)[None]), axis=0)
    weights = (2 * np.arange(1, s + 1) - s - 1).reshape((s,) + (1,) * (x.ndim - 1))
    spread = 2 * np.sum(weights * x, axis=0) / s**2
    return first - spread / 2


def pinball(quantiles, levels, y) -> np.ndarray:
    """Pinball (quantile) loss of each level's quantile at ``y``: ``[Q, ...]``."""
    q = np.asarray(quantiles, np.float64)
    tau = np.asarray(levels, float).reshape((-1,) + (1,) * (q.ndim - 1))
    diff = np.asarray(y, np.float64)[None] - q
    return np.maximum(tau * diff, (tau - 1) * diff)


def pit(fc: Forecast) -> np.ndarray:
    """Probability integral transform F(y) of each point ``[N, H]`` (uniform if calibrated)."""
    y = np.asarray(fc.y, np.float64)
    if fc.scale is not None:
        return ndtr((y - np.asarray(fc.mean)) / np.asarray(fc.scale))
    if fc.draws is not None:  # mid-rank for draws equal to y
        draws = np.asarray(fc.draws)
        return np.mean(draws < y[None], axis=0) + 0.5 * np.mean(draws == y[None], axis=0)
    levels = np.concatenate([[0.0], np.asarray(fc.levels, float), [1.0]])
    q = np.asarray(fc.quantiles, np.float64)
    flat_q, flat_y = q.reshape(len(q), -1), y.ravel()
    out = np.empty(flat_y.shape)
    for j in range(flat_y.size):  # a piecewise-linear CDF through the given quantiles
        edges = np.concatenate([[flat_q[0, j] - 1e-12], flat_q[:, j], [flat_q[-1, j] + 1e-12]])
        out[j] = np.interp(flat_y[j], edges, levels) if np.isfinite(flat_y[j]) else np.nan
    return out.reshape(y.shape)


def pit_ks(u: np.ndarray | Sequence[float]) -> float | None:
    """Kolmogorov-Smirnov distance of PIT values from the uniform distribution (0 for a
    perfectly calibrated forecaster's, in the limit; None for no values)."""
    u = np.sort(np.ravel(np.asarray(u, np.float64)))
    if u.size == 0:
        return None
    i = np.arange(1, u.size + 1)
    return float(max(np.max(i / u.size - u), np.max(u - (i - 1) / u.size)))


def pit_coverage(
    u: np.ndarray | Sequence[float], levels: np.ndarray | Sequence[float]
) -> list[float]:
    """Coverage of the central interval at each level, read off PIT values ``u``: a point lies
    inside the central ``level`` interval when ``|u - 1/2| <= level / 2`` (for forecasts whose
    quantiles are not at hand, e.g. mixtures, whose PIT is).

    Example:
        >>> pit_coverage([0.5, 0.7, 0.99], (0.5, 0.9))
        [0.6666666666666666, 0.6666666666666666]
    """
    u = np.ravel(np.asarray(u, np.float64))
    return [float(np.mean(np.abs(u - 0.5) <= level / 2)) for level in levels]


def select(summary: Mapping, names: Mapping[str, str]) -> dict:
    """A report's view of one summary of :func:`score`: ``names`` maps each report name to
    the score's (``{"coverage": "coverage_90", ...}``).

    Example:
        >>> select({"n": 3, "rmse": 1.0, "crps": 0.5}, {"n_points": "n", "rmse": "rmse"})
        {'n_points': 3, 'rmse': 1.0}
    """
    return {new: summary[old] for new, old in names.items()}


def coverage_curve(fc: Forecast, levels: Sequence[float]) -> dict[float, float | None]:
    """Nominal level -> the fraction of masked points inside ``fc``'s central interval at it."""
    mask = np.asarray(fc.mask, bool)
    y = np.asarray(fc.y, np.float64)[mask]
    out = {}
    for level in levels:
        lo, hi = fc.interval(level)
        inside = (y >= lo[mask]) & (y <= hi[mask])
        out[level] = float(inside.mean()) if inside.size else None
    return out


def pointwise(fc: Forecast) -> dict[str, np.ndarray]:
    """Every score of every point ``[N, H]`` (meaningful where ``fc.mask``)."""
    y = np.where(fc.mask, np.asarray(fc.y, np.float64), 0.0)
    mean = np.asarray(fc.mean, np.float64)
    if fc.scale is not None:
        crps = crps_gaussian(mean, fc.scale, y)
    elif fc.draws is not None:
        crps = crps_draws(fc.draws, y)
    else:
        crps = 2 * np.mean(pinball(fc.quantiles, fc.levels, y), axis=0)
    q = fc.quantile((0.05, 0.25, 0.75, 0.95) + LEVELS)
    (lo90, lo50, hi50, hi90), grid = q[:4], q[4:]
    out = {
        "sq_error": (y - mean) ** 2,
        "abs_error": np.abs(y - mean),
        "crps": crps,
        "pinball": np.mean(pinball(grid, LEVELS, y), axis=0),
        "coverage_50": ((y >= lo50) & (y <= hi50)).astype(float),
        "width_50": hi50 - lo50,
        "coverage_90": ((y >= lo90) & (y <= hi90)).astype(float),
        "width_90": hi90 - lo90,
    }
    return out


def _summary(points: Mapping[str, np.ndarray], mask: np.ndarray) -> dict[str, float | int | None]:
    """:func:`_rows` of all the points as one row, as a dict: None (never a NaN in
    metrics.json) for every score where no point counts."""
    flat = lambda a: np.reshape(a, (1, -1))
    row = _rows({k: flat(v) for k, v in points.items()}, flat(mask)).iloc[0]
    n = int(row["n"])
    return {"n": n, **{k: float(row[k]) if n else None for k in NAMES}}


def _rows(points: Mapping[str, np.ndarray], mask: np.ndarray) -> pd.DataFrame:
    """The scores of each row (individual) at once: ``n`` and the mean of each point score
    (RMSE the root of the mean squared error), NaN (a DataFrame's missing value) where a row
    has no point."""
    n = mask.sum(axis=1)
    mean = {
        k: np.where(n > 0, np.where(mask, v, 0.0).sum(axis=1) / np.maximum(n, 1), np.nan)
        for k, v in points.items()
    }
    return pd.DataFrame({
        "n": n, "rmse": np.sqrt(mean["sq_error"]), "mae": mean["abs_error"], "crps": mean["crps"],
        "pinball": mean["pinball"], "coverage_50": mean["coverage_50"],
        "width_50": mean["width_50"], "coverage_90": mean["coverage_90"],
        "width_90": mean["width_90"],
    })  # fmt: skip


# the scores of every summary, after its n
NAMES = ("rmse", "mae", "crps", "pinball", "coverage_50", "width_50", "coverage_90", "width_90")


def pooled(forecasts: Sequence[Forecast]) -> dict[str, float | int | None]:
    """The pooled scores of :func:`score` over the masked points of several forecasts together
    (e.g. one per horizon, each with its own number of draws)."""
    points = [pointwise(fc) for fc in forecasts]
    flat = {k: np.concatenate([np.ravel(p[k]) for p in points]) for k in points[0]}
    return _summary(flat, np.concatenate([np.ravel(fc.mask) for fc in forecasts]).astype(bool))


_ROWS = 256  # individuals scored at a time


def score(
    fc: Forecast, *, groups: Mapping[str, ArrayLike] | None = None, pit_bins: int = 10
) -> dict:
    """Scores of ``fc`` over its masked points.

    Args:
      fc: the forecasts.
      groups: subgroup name -> label of each individual ``[N]`` (e.g. ``{"sex": [...]}``).
      pit_bins: bins of the PIT histogram.

    Returns:
      ``pooled`` (one dict of ``n, rmse, mae, crps, pinball, coverage_50, width_50,
      coverage_90, width_90``), ``per_horizon`` (a list, horizon 1 first), ``per_individual``
      (a DataFrame, one row per individual with ``subject``), ``groups`` (name -> label -> dict)
      and ``pit`` (``histogram``: the fraction of points per bin, flat 1/bins if calibrated;
      ``mean`` 0.5 and ``var`` 1/12 if calibrated, ``ks`` the Kolmogorov-Smirnov distance from
      the uniform). Scores are None where no point counts.

    Example:
        >>> fc = Forecast(mean=np.zeros((2, 1)), scale=np.ones((2, 1)), y=np.ones((2, 1)),
        ...               mask=np.array([[True], [False]]))
        >>> s = score(fc)["pooled"]
        >>> s["n"], s["rmse"], round(s["crps"], 4)
        (1, 1.0, 0.6024)
    """
    mask = np.asarray(fc.mask, bool)
    n, h = fc.shape
    # per point, so in blocks of individuals: a block's quantile grids (levels x rows x H) stay
    # small whatever the cohort (the 99-level intervals of 4,096 individuals x 216 steps took
    # several GB at once)
    blocks = [np.arange(lo, min(lo + _ROWS, n)) for lo in range(0, n, _ROWS)] or [np.arange(0)]
    parts = [pointwise(fc.take(b)) if len(blocks) > 1 else pointwise(fc) for b in blocks]
    points = {k: np.concatenate([p[k] for p in parts]) for k in parts[0]}
    per_individual = _rows(points, mask)
    per_individual.insert(0, "subject", np.arange(n) if fc.subject is None else fc.subject)
    out = {
        "pooled": _summary(points, mask),
        "per_horizon": [_summary(points, mask & (np.arange(h) == k)[None]) for k in range(h)],
        "per_individual": per_individual,
        "groups": {},
    }
    for name, labels in (groups or {}).items():
        labels = np.asarray(labels, object)
        out["groups"][name] = {
            str(level): _summary(points, mask & (labels == level)[:, None])
            for level in pd.unique(labels)
        }
    u = (np.concatenate([pit(fc.take(b)) for b in blocks]) if len(blocks) > 1 else pit(fc))[mask]
    hist = np.histogram(u, bins=pit_bins, range=(0, 1))[0] / max(len(u), 1)
    out["pit"] = {
        "histogram": hist.tolist(),
        "mean": float(np.mean(u)) if len(u) else None,
        "var": float(np.var(u)) if len(u) else None,
        "ks": pit_ks(u),
    }
    return out


def pooled_rows(rows: pd.DataFrame) -> dict[str, float | int | None]:
    """The ``pooled`` scores of :func:`score` from its ``per_individual`` rows (e.g. those of
    several processes' shares of a cohort, put together): each row's means weighted by its
    number of points (RMSE the root of the weighted mean square); None where no point counts.

    >>> fc = Forecast(mean=np.zeros((2, 2)), scale=np.ones((2, 2)), y=np.eye(2),
    ...               mask=np.array([[True, True], [True, False]]))
    >>> s = score(fc)
    >>> p = pooled_rows(s["per_individual"])
    >>> p["n"], round(p["rmse"], 6), round(s["pooled"]["rmse"], 6)
    (3, 0.57735, 0.57735)
    """
    n = rows["n"].to_numpy()
    total = int(n.sum())
    if not total:
        return {"n": 0, **dict.fromkeys(NAMES)}
    weighted = lambda v: float(np.where(n > 0, v * n, 0.0).sum() / total)
    out = {k: weighted(rows[k].to_numpy(np.float64)) for k in NAMES}
    out["rmse"] = float(np.sqrt(weighted(rows["rmse"].to_numpy(np.float64) ** 2)))
    return {"n": total, **out}
