"""Recurrent glucose twins (population, personalized or federated) under the forecast protocol.

The twins are the package's recurrent twins (:mod:`twinjax.twins`) trained one step ahead on the
CGM cohort's training days; a 30- or 60-minute forecast rolls the twin forward over the CGM
periods after the origin with the recorded carbohydrates and insulin of those periods, feeding
back a draw from each step's predictive Gaussian (:func:`twinjax.twins.forecast` with a key), so
``draws`` sample paths carry the accumulation of uncertainty over the horizon. The forecast is
the mean of the draws; the 90% interval their empirical 5% and 95% quantiles (which
:func:`~twinjax.glucose.intervals.interval_scale` can widen on held-back days).
"""

from functools import partial
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import Float

from twinjax.data import CohortArrays, NormStats, Series
from twinjax.glucose.scoring import HORIZONS, LEVEL, Forecasts
from twinjax.twins import TwinSpec, forecast


class Sampled(NamedTuple):
    """Sample-path forecasts in data units: ``draws [patients, origins, draws, horizons]``."""

    draws: Float[np.ndarray, "patients origins draws horizons"]

    def summary(self) -> Forecasts:
        """The mean over the draws and their central 90% interval."""
        lo, hi = np.quantile(self.draws, [(1 - LEVEL) / 2, (1 + LEVEL) / 2], axis=2)
        return Forecasts(self.draws.mean(2), lo, hi)


def _window(series: Series, origin, history: int, horizon: int):
    cut = lambda x: jax.lax.dynamic_slice_in_dim(x, origin - history + 1, history)
    past = Series(cut(series.values), cut(series.mask), cut(series.interventions), series.static)
    future = jax.lax.dynamic_slice_in_dim(series.interventions, origin + 1, horizon)
    return past, future


def sample_forecasts(
    key: jax.Array,
    params,
    spec: TwinSpec,
    arrays: CohortArrays,
    stats: NormStats,
    at: np.ndarray,
    *,
    step: float,
    history: int,
    personal: bool,
    draws: int = 64,
    target: int = 0,
    batch: int = 16,
) -> Sampled:
    """``draws`` sample paths from each origin in ``at`` (CGM cells), read at :data:`HORIZONS`.

    Args:
        key: the sampling key (patient ``i``, origin ``j`` use ``fold_in(fold_in(key, i), j)``).
        params: the population twin, or personal twins with a leading patients axis
            (``personal=True``).
        spec, arrays, stats: the twins' architecture, the prepared cohort and its value
            normalization (population statistics).
        at: origins (cell indices, each at least ``history - 1``).
        step: minutes per cell; history: cells of records each forecast is conditioned on.
        draws: sample paths per forecast; target: the CGM feature's index.
        batch: origins rolled forward at once (bounds memory).
    """
    ahead = tuple(int(round(h / step)) for h in HORIZONS)
    if np.min(at) < history - 1:
        raise ValueError(f"origin {int(np.min(at))} has fewer than {history} cells of history")
    n_at = len(at)
    batch = min(batch, n_at)
    padded = np.concatenate([at, np.full(-n_at % batch, at[-1])])  # no remainder: one body
    keys = jax.random.split(key, arrays.n_individuals)
    z = _sample_paths(
        params, arrays.series, keys, jnp.asarray(padded), spec=spec, history=history,
        ahead=ahead, draws=draws, target=target, personal=personal, batch=batch,
    )  # fmt: skip
    z = np.asarray(z)[:, :n_at]  # [patients, origins, draws, horizons]
    mu = np.asarray(stats.mean)[..., target]
    sd = np.asarray(stats.std)[..., target]
    if np.ndim(mu):  # per-individual normalization
        mu, sd = mu[:, None, None, None], sd[:, None, None, None]
    return Sampled(z * sd + mu)


@partial(
    jax.jit, static_argnames=("spec", "history", "ahead", "draws", "target", "personal", "batch")
)
def _sample_paths(params, series, keys, at, *, spec, history, ahead, draws, target, personal,
                  batch):  # fmt: skip
    rows = jnp.asarray(ahead) - 1

    def _patient(p, series, k_patient):
        def _origin(args):
            origin, j = args
            past, future = _window(series, origin, history, max(ahead))
            k_paths, k_obs = jax.random.split(jax.random.fold_in(k_patient, j))
            paths = jax.vmap(lambda k: forecast(p, spec, past, future, key=k))(
                jax.random.split(k_paths, draws)
            )
            mean, scale = paths[0][:, rows, target], paths[1][:, rows, target]
            return mean + scale * jax.random.normal(k_obs, mean.shape)

        return jax.lax.map(_origin, (at, jnp.arange(at.shape[0])), batch_size=batch)

    return jax.vmap(_patient, in_axes=(0 if personal else None, 0, 0))(params, series, keys)


__all__ = ["Sampled", "sample_forecasts"]
