"""Per-individual objectives: random-window training loss and sliding-window predictions."""

from functools import partial

import jax
import jax.numpy as jnp
from jaxtyping import Array, ArrayLike, Bool, Float, Int, PRNGKeyArray

from twinjax.data import Series, take_windows, window_starts
from twinjax.twins.model import (
    WINDOW_AXES,
    Params,
    Spec,
    apply,
    apply_windows,
    gaussian_nll,
    masked_nll,
)
from twinjax.twins.rollout import rollout_nll


def window_loss(
    params: Params,
    spec: Spec,
    key: PRNGKeyArray,
    series: Series,
    segment: Bool[ArrayLike, " time"],
    *,
    length: int,
    n_windows: int,
    rollout_steps: int = 0,
) -> Float[Array, ""]:
    """Mean NLL over ``n_windows`` random windows inside a segment that starts at step 0.

    Args:
      params, spec: one individual's twin.
      key: draws the window starts.
      series: the individual's series.
      segment: the steps whose targets may count (e.g. the training segment).
      length: steps per window; n_windows: windows per call.
      rollout_steps: k > 0 adds, per window, the NLL of its last k values forecast by a
        rollout from the steps before them (:func:`~twinjax.twins.rollout.rollout_nll`): the
        twin is trained for the horizons it forecasts, not only one step ahead.

    Returns:
      The mean over windows of each window's masked one-step Gaussian NLL (plus the mean
      rollout NLL).
    """
    if not 0 <= rollout_steps < length:
        raise ValueError(f"rollout_steps={rollout_steps} must be in [0, window length {length})")
    starts = window_starts(key, jnp.sum(segment), length=length, n_windows=n_windows)
    win = lambda x: take_windows(x, starts, length)
    target = win(series.mask) & win(segment)[..., None]
    windows = Series(win(series.values), win(series.mask), win(series.interventions), series.static)
    mean, scale = apply_windows(params, spec, windows)
    losses = jax.vmap(masked_nll)(mean, scale, windows.values, windows.mask, target)
    if rollout_steps:
        roll = partial(rollout_nll, params, spec, steps=rollout_steps)
        losses = losses + jax.vmap(roll, in_axes=(WINDOW_AXES, 0))(windows, target)
    return jnp.mean(losses)


def predict_at(
    params: Params,
    spec: Spec,
    series: Series,
    targets: Int[ArrayLike, " targets"],
    *,
    history: int,
) -> tuple[Float[Array, "targets features"], Float[Array, "targets features"]]:
    """Predicts ``values[t]`` for each target t from the ``history`` steps before it.

    This is how a deployed twin forecasts: from a window of recent data, never seeing step t.
    Steps before the start of the series are treated as missing.
    """
    pad = lambda x: jnp.concatenate([jnp.zeros((history,) + x.shape[1:], x.dtype), x])
    padded = Series(pad(series.values), pad(series.mask), pad(series.interventions), series.static)

    def _one(t):
        window = Series(
            *(jax.lax.dynamic_slice_in_dim(x, t, history) for x in padded[:3]), series.static
        )
        mean, scale = apply(params, spec, window)
        return mean[-1], scale[-1]

    return jax.vmap(_one)(targets)


def segment_targets(start: Int[Array, ""], end: Int[Array, ""], size: int):
    """The first ``size`` steps from ``start`` and whether each is before ``end``."""
    k = jnp.arange(size)
    return start + k, k < end - start


def segment_nll(
    params: Params, spec: Spec, series: Series, start, end, *, size: int, history: int
) -> Float[Array, ""]:
    """Mean one-step NLL of the observed values in [start, end) (one individual)."""
    values, mask = series.values, series.mask
    t, inside = segment_targets(start, end, size)
    t = jnp.minimum(t, values.shape[0] - 1)
    mean, scale = predict_at(params, spec, series, t, history=history)
    w = mask[t] & inside[:, None]
    nll = gaussian_nll(mean, scale, jnp.where(w, values[t], 0.0))
    return jnp.sum(jnp.where(w, nll, 0.0)) / jnp.maximum(jnp.sum(w), 1)
