"""Forecasts of hierarchical twins past each individual's last observation, and their scores.

A forecast is the posterior predictive at future times: for every posterior draw, the individual's
curve (:func:`~twinjax.bayes.hierarchical.predict_curves`) plus the model's own residual error
(:func:`~twinjax.bayes.residual.observation_dist`), vmapped over draws and individuals by
:func:`~twinjax.bayes.predictive.posterior_predictive`. :func:`hold_out_last` sets each
individual's last visits aside so that a fit on the rest can be scored on them
(:func:`twinjax.eval.score.score`).
"""

import warnings
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import ArrayLike, Float

from twinjax.bayes.data import TwinData
from twinjax.bayes.hierarchical import HierarchicalSpec
from twinjax.bayes.predictive import posterior_predictive
from twinjax.eval.score import Forecast


class HeldOut(NamedTuple):
    """A cohort split by :func:`hold_out_last`: the individuals kept and their last visits."""

    train: TwinData  # kept individuals, their last visits masked out (values overwritten)
    times: Float[np.ndarray, "individuals k"]  # held-out times, in time order
    values: Float[np.ndarray, "individuals k"]
    dropped: tuple  # ids of individuals with too few visits to hold any out


def forecast(
    spec: HierarchicalSpec,
    samples: dict,
    times: Float[ArrayLike, "individuals time"],
    regimen,
    *,
    key: jax.Array,
    subject=None,
) -> Forecast:
    """Posterior-predictive draws and mean at ``times`` (any times, e.g. future ones), as a
    :class:`twinjax.eval.score.Forecast` with nothing observed yet (``mask`` False; score it
    by replacing ``y`` and ``mask``).

    Args:
        spec: the fitted model's population structure.
        samples: flat posterior draws (``theta`` is ``[draws, individuals, params]``, residual
            SDs ``[draws]``), e.g. :func:`~twinjax.bayes.predictive.flatten_chains` of NUTS's.
        times: each individual's forecast times, on the data's time axis (centred if it is).
        regimen: each individual's regimen (as in the data the model was fitted to).
        key: the PRNG key of the residual draws.
        subject: the individuals' ids, carried into the forecast.

    Returns:
        The :class:`Forecast`.

    Example:
        >>> from twinjax.bayes import TwinData, linear_predict
        >>> spec = HierarchicalSpec(linear_predict, ("intercept", "slope"))
        >>> theta = np.tile([[[1.0, 2.0]]], (500, 3, 1))  # 500 draws, 3 individuals
        >>> samples = {"theta": theta, "sigma_add": np.full(500, 0.1)}
        >>> f = forecast(spec, samples, np.full((3, 2), 10.0), None, key=jax.random.key(0))
        >>> f.draws.shape, round(float(f.mean[0, 0]), 1)
        ((500, 3, 2), 21.0)
    """
    pp = posterior_predictive(spec, samples, jnp.asarray(times), regimen, key=key)
    draws = np.asarray(pp.observations, np.float64)
    times = np.asarray(times, np.float64)
    return Forecast(mean=draws.mean(axis=0), draws=draws, y=np.zeros(times.shape),
                    mask=np.zeros(times.shape, bool), subject=subject, time=times)  # fmt: skip


def future_times(
    data: TwinData, steps: int, every: float | None = None
) -> Float[np.ndarray, "individuals steps"]:
    """The ``steps`` times after each individual's last observation, ``every`` apart.

    ``every`` None: each individual's median gap between consecutive observations; the cohort's
    median gap for an individual with a single observation.

    Raises:
        ValueError: ``steps < 1``, or a spacing that is not positive (named individuals).

    Example:
        >>> t = np.array([[0.0, 1.0, 3.0], [0.0, 0.0, 0.0]])
        >>> d = TwinData(t, t, np.array([[1, 1, 1], [1, 0, 0]], bool), None, np.zeros((2, 0)))
        >>> future_times(d, 2).tolist()
        [[4.5, 6.0], [1.5, 3.0]]
    """
    if steps < 1:
        raise ValueError(f"forecast steps must be >= 1, got {steps}")
    mask = np.asarray(data.mask, bool)
    t = np.sort(np.where(mask, np.asarray(data.times, np.float64), np.nan), axis=1)
    last = np.nanmax(t, axis=1)
    if every is None:
        gaps = np.diff(t, axis=1)  # NaN past each individual's last observation
        if np.isnan(gaps).all():
            raise ValueError("no individual has two observations: give the forecast spacing")
        with warnings.catch_warnings():  # all-NaN rows: single observations, filled below
            warnings.simplefilter("ignore", RuntimeWarning)
            own = np.nanmedian(gaps, axis=1)
        spacing = np.where(np.isnan(own), np.nanmedian(gaps), own)
    else:
        spacing = np.full(len(last), float(every))
    bad = [data.subject_ids[i] if data.subject_ids else i for i in np.flatnonzero(spacing <= 0)]
    if bad:
        raise ValueError(f"forecast spacing is not positive for {bad}: give it explicitly")
    return last[:, None] + spacing[:, None] * np.arange(1, steps + 1)[None, :]


def _rows(data: TwinData, keep: np.ndarray) -> TwinData:
    """The individuals ``keep`` (boolean) of ``data``."""
    ids = [s for s, k in zip(data.subject_ids, keep, strict=True) if k]
    take = lambda a: np.asarray(a)[keep]
    return data._replace(
        times=take(data.times), values=take(data.values), mask=take(data.mask),
        regimen=jax.tree.map(take, data.regimen), covariates=take(data.covariates),
        subject_ids=tuple(ids), imputed=tuple(s for s in data.imputed if s in ids),
    )  # fmt: skip


def hold_out_last(data: TwinData, k: int) -> HeldOut:
    """Sets each individual's last ``k`` observations (by time) aside.

    Individuals with ``k`` or fewer observations keep nothing to fit: they are dropped, with a
    warning naming them. The held-out entries are masked out of ``train`` and their values
    overwritten with the padding value 1.0, so nothing downstream can see them.

    Raises:
        ValueError: ``k < 1``, or no individual has more than ``k`` observations.

    Example:
        >>> t = np.array([[0.0, 1.0, 2.0], [0.0, 1.0, 0.0]])
        >>> d = TwinData(t, 10 + t, np.array([[1, 1, 1], [1, 1, 0]], bool), None,
        ...              np.zeros((2, 0)), subject_ids=("a", "b"))
        >>> h = hold_out_last(d, 1)
        >>> h.train.mask.tolist(), h.times.tolist(), h.values.tolist()
        ([[True, True, False], [True, False, False]], [[2.0], [1.0]], [[12.0], [11.0]])
    """
    if k < 1:
        raise ValueError(f"hold out at least one visit, got {k}")
    n = np.asarray(data.mask, bool).sum(axis=1)
    short = n <= k
    ids = data.subject_ids or tuple(range(len(n)))
    dropped = tuple(s for s, bad in zip(ids, short, strict=True) if bad)
    if short.all():
        raise ValueError(f"no individual has more than {k} observations to hold {k} out")
    if dropped:
        warnings.warn(
            f"holding out the last {k} visits: {len(dropped)} subjects have {k} or fewer and are "
            f"left out of the fit and the scores: {list(dropped)}",
            stacklevel=2,
        )
    data = _rows(data, ~short)
    mask, times = np.asarray(data.mask, bool), np.asarray(data.times, np.float64)
    order = np.argsort(np.where(mask, times, np.inf), axis=1, kind="stable")  # observed first
    pos = np.take_along_axis(order, mask.sum(axis=1)[:, None] - k + np.arange(k)[None, :], 1)
    held = np.zeros_like(mask)
    np.put_along_axis(held, pos, True, axis=1)
    values = np.asarray(data.values, np.float64)
    train = data._replace(mask=mask & ~held, values=np.where(held, 1.0, values))
    return HeldOut(train, np.take_along_axis(times, pos, 1),
                   np.take_along_axis(values, pos, 1), dropped)  # fmt: skip
