"""Multi-step forecasts of one individual's twin: sample paths with their predictive moments,
the training loss through a rollout, and rollouts from every origin of a cohort's segment.

A path feeds back a draw from each step's predictive Gaussian; step h of S paths is a mixture
of S Gaussians whose mean and variance are (law of total variance, over the paths)

    m_h = mean_s mu_h^s,    v_h = mean_s sigma_h^s^2 + var_s mu_h^s,

which the per-horizon calibration scores and rescales (``draws -> m_h + c_h (draws - m_h)``).
At h = 1 every path shares the one-step Gaussian, so ``m_1, v_1`` are its mean and variance.
"""

from functools import partial

import jax
import jax.numpy as jnp
from jaxtyping import Array, ArrayLike, Bool, Float, Int, PRNGKeyArray

from twinjax.data import Series
from twinjax.twins.model import (
    Params,
    Spec,
    gaussian_nll,
    rollout_from,
    rollout_start,
)


def sample_paths(
    params: Params,
    spec: Spec,
    series: Series,
    plan: Float[ArrayLike, "horizon kinds"],
    *,
    key: PRNGKeyArray,
    n_samples: int,
) -> tuple[Float[Array, "samples horizon features"], Float[Array, "samples horizon features"]]:
    """``n_samples`` sampled rollouts after one individual's history (read once for all of
    them): each path's predictive ``mean, scale`` at every step of the horizon."""
    start = rollout_start(params, spec, series, plan.shape[0])
    path = lambda k: rollout_from(params, spec, start, series.static, plan, key=k)
    return jax.vmap(path)(jax.random.split(key, n_samples))


def path_moments(
    means: Float[Array, "samples horizon features"],
    scales: Float[Array, "samples horizon features"],
) -> tuple[Float[Array, "horizon features"], Float[Array, "horizon features"]]:
    """Mean and variance of the paths' mixture at each step (see the module docstring)."""
    m = jnp.mean(means, 0)
    return m, jnp.mean(jnp.square(scales), 0) + jnp.mean(jnp.square(means - m), 0)


def rollout_nll(
    params: Params,
    spec: Spec,
    window: Series,
    target: Bool[ArrayLike, "time features"],
    *,
    steps: int,
) -> Float[Array, ""]:
    """Mean NLL of the last ``steps`` values of a window forecast by a rollout from the steps
    before them, feeding back the predicted mean (one individual, one window).

    The scale enters with its gradient stopped: the rollout teaches the mean (and the state it
    carries) to forecast ``steps`` ahead from its own predictions, weighted as the one-step loss
    weighs each error (1 / scale^2); the scale head keeps its one-step target, and per-horizon
    intervals come from sampled paths and their calibration.
    """
    origin = window.values.shape[0] - steps
    history = Series(*(x[:origin] for x in window[:3]), window.static)
    mean, scale = rollout_from(
        params,
        spec,
        rollout_start(params, spec, history, steps),
        window.static,
        window.interventions[origin:],
    )
    weight = target[origin:]
    nll = gaussian_nll(
        mean, jax.lax.stop_gradient(scale), jnp.where(weight, window.values[origin:], 0)
    )
    return jnp.sum(jnp.where(weight, nll, 0.0)) / jnp.maximum(jnp.sum(weight), 1)


@partial(
    jax.jit,
    static_argnames=("spec", "history", "horizon", "size", "n_samples", "shared", "stride"),
)
def segment_rollouts(
    params: Params,
    spec: Spec,
    series: Series,
    start: Int[ArrayLike, " individuals"],
    ids: Int[ArrayLike, " individuals"],
    key: PRNGKeyArray,
    *,
    history: int,
    horizon: int,
    size: int,
    n_samples: int,
    shared: bool,
    stride: int = 1,
) -> tuple[
    Float[Array, "individuals origins horizon features"],
    Float[Array, "individuals origins horizon features"],
]:
    """Sampled ``horizon``-step forecasts from origins ``start + k * stride`` (k < ``size``) of every
    individual, each from the ``history`` steps before it and under the interventions that
    followed (zero beyond the series): the paths' mixture mean and variance ``[N, K, H, F]``.

    Origins are mapped one after the other (``lax.map``), so memory holds one origin's paths.
    Paths are keyed by ``ids`` (each individual's id, so chunking changes no draw) and origin.
    """

    def one(p, s: Series, begin, k_i):
        pad = lambda x, before, after: jnp.concatenate(
            [
                jnp.zeros((before, *x.shape[1:]), x.dtype),
                x,
                jnp.zeros((after, *x.shape[1:]), x.dtype),
            ]
        )
        padded = Series(*(pad(x, history, horizon) for x in s[:3]), s.static)

        def at(o):  # origin o: the history is steps [o - history, o), the plan [o, o + horizon)
            window = Series(
                *(jax.lax.dynamic_slice_in_dim(x, o, history) for x in padded[:3]), s.static
            )
            plan = jax.lax.dynamic_slice_in_dim(padded.interventions, o + history, horizon)
            paths = sample_paths(
                p, spec, window, plan, key=jax.random.fold_in(k_i, o), n_samples=n_samples
            )
            return path_moments(*paths)

        return jax.lax.map(at, begin + stride * jnp.arange(size))

    keys = jax.vmap(jax.random.fold_in, in_axes=(None, 0))(key, jnp.asarray(ids))
    cohort = jax.vmap(one, in_axes=(None if shared else 0, 0, 0, 0))
    return cohort(params, series, jnp.asarray(start), keys)
