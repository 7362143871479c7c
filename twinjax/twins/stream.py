"""A twin that runs alongside its individual: the recurrent state is carried from step to step.

:func:`stream_init` encodes the history once; each :func:`stream_step` then costs one cell step
and, with attention, one query over a cache of the last ``cache`` hidden states, however long the
individual has been followed. While the whole history fits in the cache, the prediction equals
:func:`~twinjax.twins.apply` re-run over the whole series (the tests check it); beyond that,
attention sees the most recent ``cache`` steps (the recurrent state still carries everything).
"""

from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
from jaxtyping import Array, Bool, Float, Int

from twinjax.data import Series
from twinjax.twins.cells import get_cell
from twinjax.twins.model import (
    Params,
    Spec,
    TwinParams,
    TwinSpec,
    encode,
    predict_head,
    step_inputs,
)


class StreamState(NamedTuple):
    """One individual's running twin: its cell carry, attention's keys and values of the recent
    hidden states (oldest first; the last ``filled`` rows are real; projected once, when the
    state enters the cache), its static covariates and its current prediction (``mean, scale``)
    of the next step's values."""

    carry: Any
    keys: Float[Array, "cache dim"]
    values: Float[Array, "cache dim"]
    filled: Int[Array, ""]
    static: Float[Array, " covariates"]
    mean: Float[Array, " features"]
    scale: Float[Array, " features"]


def _project(params: TwinParams, spec: TwinSpec, hs):
    """Attention keys and values of hidden states (zero-width without attention)."""
    if not spec.attention:
        return hs[..., :0], hs[..., :0]
    return hs @ params.attention.wk, hs @ params.attention.wv


def _predict(params: TwinParams, spec: TwinSpec, h, keys, values, filled):
    """The head on ``h`` and its attention over the cached keys/values (as ``attend``)."""
    if not spec.attention:
        return predict_head(params, spec, h)
    q = h @ params.attention.wq
    logits = (keys @ q) / jnp.sqrt(q.shape[-1])
    visible = jnp.arange(keys.shape[0]) >= keys.shape[0] - filled
    context = jax.nn.softmax(jnp.where(visible, logits, -jnp.inf)) @ values
    return predict_head(params, spec, jnp.concatenate([h, context]))


def stream_init(params: Params, spec: Spec, series: Series, *, cache: int) -> StreamState:
    """Encodes one individual's history (``series``); the state predicts the step after it.

    Args:
      params, spec: the individual's twin.
      series: its history (at least one step).
      cache: hidden states kept for attention (ignored without attention, but at least 1).

    Raises:
      ValueError: a flax twin (its module has no carry to step; re-run ``apply`` over a window).
    """
    if not isinstance(spec, TwinSpec):
        raise ValueError(
            f"a streaming twin steps the built-in cell's carry; {type(spec).__name__} twins "
            "have none: re-run apply over each individual's recent window instead"
        )
    carry, hs = encode(params, spec, step_inputs(series))
    k = min(hs.shape[0], cache)
    keys, values = _project(params, spec, hs[hs.shape[0] - k :])
    pad = lambda x: jnp.zeros((cache,) + x.shape[1:], x.dtype).at[cache - k :].set(x)
    keys, values, filled = pad(keys), pad(values), jnp.asarray(k, jnp.int32)
    mean, scale = _predict(params, spec, hs[-1], keys, values, filled)
    return StreamState(carry, keys, values, filled, series.static, mean, scale)


def stream_step(
    params: TwinParams,
    spec: TwinSpec,
    state: StreamState,
    values: Float[Array, " features"],
    mask: Bool[Array, " features"],
    interventions: Float[Array, " kinds"],
) -> StreamState:
    """Takes in one more step of data (the values seen, which were observed, what was given)."""
    x = jnp.concatenate(
        [jnp.where(mask, values, 0.0), mask.astype(values.dtype), interventions, state.static]
    )
    carry = get_cell(spec.cell).step(params.cell, state.carry, x)
    h = get_cell(spec.cell).output(carry)
    k, v = _project(params, spec, h)
    push = lambda cache, x: jnp.roll(cache, -1, axis=0).at[-1].set(x)
    keys, values = push(state.keys, k), push(state.values, v)
    filled = jnp.minimum(state.filled + 1, keys.shape[0])
    mean, scale = _predict(params, spec, h, keys, values, filled)
    return StreamState(carry, keys, values, filled, state.static, mean, scale)
