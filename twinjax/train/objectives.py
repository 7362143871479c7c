"""Per-individual objectives: random-window training loss and sliding-window predictions."""

from __future__ import annotations

import jax
import jax.numpy as jnp
from jaxtyping import Array, Bool, Float, Int, PRNGKeyArray

from twinjax.data import take_windows, window_starts
from twinjax.twins import TwinSpec, apply, gaussian_nll, nll_loss


def window_loss(
    params: dict,
    spec: TwinSpec,
    key: PRNGKeyArray,
    values: Float[Array, "time features"],
    mask: Bool[Array, "time features"],
    interventions: Float[Array, "time kinds"],
    static: Float[Array, " covariates"],
    segment: Bool[Array, " time"],
    *,
    length: int,
    n_windows: int,
) -> Float[Array, ""]:
    """Mean NLL over ``n_windows`` random windows inside a segment that starts at step 0."""
    starts = window_starts(key, jnp.sum(segment), length=length, n_windows=n_windows)
    win = lambda x: take_windows(x, starts, length)
    target = win(mask) & win(segment)[..., None]
    losses = jax.vmap(nll_loss, in_axes=(None, None, 0, 0, 0, None, 0))(
        params, spec, win(values), win(mask), win(interventions), static, target
    )
    return jnp.mean(losses)


def predict_at(
    params: dict,
    spec: TwinSpec,
    values: Float[Array, "time features"],
    mask: Bool[Array, "time features"],
    interventions: Float[Array, "time kinds"],
    static: Float[Array, " covariates"],
    targets: Int[Array, " targets"],
    *,
    history: int,
) -> tuple[Float[Array, "targets features"], Float[Array, "targets features"]]:
    """Predicts ``values[t]`` for each target t from the ``history`` steps before it.

    This is how a deployed twin forecasts: from a window of recent data, never seeing step t.
    Steps before the start of the series are treated as missing.
    """
    pad = lambda x: jnp.concatenate([jnp.zeros((history,) + x.shape[1:], x.dtype), x])
    padded = (pad(values), pad(mask), pad(interventions))

    def _one(t):
        window = [jax.lax.dynamic_slice_in_dim(x, t, history) for x in padded]
        mean, scale = apply(params, spec, *window, static)
        return mean[-1], scale[-1]

    return jax.vmap(_one)(targets)


def segment_targets(start: Int[Array, ""], end: Int[Array, ""], size: int):
    """The first ``size`` steps from ``start`` and whether each is before ``end``."""
    k = jnp.arange(size)
    return start + k, k < end - start


def segment_nll(
    params: dict, spec: TwinSpec, data: tuple, start, end, *, size: int, history: int
) -> Float[Array, ""]:
    """Mean one-step NLL of the observed values in [start, end) (one individual)."""
    values, mask, interventions, static = data
    t, inside = segment_targets(start, end, size)
    t = jnp.minimum(t, values.shape[0] - 1)
    mean, scale = predict_at(params, spec, values, mask, interventions, static, t, history=history)
    w = mask[t] & inside[:, None]
    nll = gaussian_nll(mean, scale, jnp.where(w, values[t], 0.0))
    return jnp.sum(jnp.where(w, nll, 0.0)) / jnp.maximum(jnp.sum(w), 1)
