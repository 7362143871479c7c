"""The recurrent twin of ONE individual: cell + temporal attention + Gaussian head.

At grid step t the twin reads the observed values (zero where missing) with their mask, the
interventions given at t and the static covariates, and predicts a Gaussian for the values at t+1.
A cohort is ``jax.vmap`` of these functions over individuals' parameters and data.

The network before the head is the built-in cell with attention (:class:`TwinSpec`) or a flax
module (:class:`~twinjax.twins.flax_net.FlaxSpec`); the functions here take either spec and its
parameters (:data:`Spec`, :data:`Params`).
"""

from dataclasses import dataclass
from typing import Literal, NamedTuple

import jax
import jax.numpy as jnp
from jaxtyping import Array, ArrayLike, Bool, Float, PRNGKeyArray

from twinjax.data import Cohort, Series
from twinjax.twins import flax_net
from twinjax.twins.attention import AttentionParams, attend, attention_init, causal_attention
from twinjax.twins.cells import Dense, RecurrentParams, get_cell, run_cell
from twinjax.twins.flax_net import FlaxParams, FlaxSpec, FlaxStart
from twinjax.twins.gaussian import gaussian_nll, head_init, predict_head, step_inputs
from twinjax.twins.sequence import lstm_sequence

WINDOW_AXES = Series(0, 0, 0, None)  # vmap axes over a batch of windows sharing static covariates


@dataclass(frozen=True)
class TwinSpec:
    """Static architecture description (hashable: pass as a static argument)."""

    n_features: int
    n_interventions: int
    n_static: int
    cell: Literal["lstm", "gru"] = "lstm"
    hidden: int = 32
    attention: bool = True
    attention_dim: int = 16
    min_scale: float = 1e-3
    remat_chunk: int = 0  # >0: recompute the cell's activations in chunks (less memory)
    # how training windows run through an LSTM: "scan" (``cells.run_cell`` per window) or
    # "sequence" (``sequence.lstm_sequence``: one individual's windows together, time-major, a
    # hand-written backward pass; the same function)
    layout: Literal["scan", "sequence"] = "scan"
    # dtype of the LSTM carries that the sequence layout keeps for its backward pass:
    # "bfloat16" halves them (forward pass, state and gradient arithmetic stay float32; the
    # gradient is approximate, see ``lstm_sequence``)
    residuals: Literal["float32", "bfloat16"] = "float32"

    def __post_init__(self):
        if self.layout not in ("scan", "sequence"):
            raise ValueError(f"layout must be 'scan' or 'sequence', not {self.layout!r}")
        if self.layout == "sequence" and self.cell != "lstm":
            raise ValueError(f"layout='sequence' is written for the LSTM, not {self.cell!r}")
        if self.residuals not in ("float32", "bfloat16"):
            raise ValueError(f"residuals must be 'float32' or 'bfloat16', not {self.residuals!r}")
        if self.residuals != "float32" and self.layout != "sequence":
            raise ValueError("bfloat16 residuals need layout='sequence' (the scan keeps float32)")
        if self.layout == "sequence" and self.remat_chunk:
            raise ValueError(
                "remat_chunk applies to layout='scan' (the sequence keeps only carries)"
            )

    @classmethod
    def for_cohort(cls, cohort: Cohort, **architecture) -> "TwinSpec":
        """The spec whose input sizes match ``cohort`` (streams, intervention kinds, covariates)."""
        return cls(
            n_features=cohort.n_features,
            n_interventions=cohort.interventions.shape[-1],
            n_static=cohort.static.shape[-1],
            **architecture,
        )

    @property
    def d_in(self) -> int:
        return 2 * self.n_features + self.n_interventions + self.n_static

    @property
    def d_head(self) -> int:
        return self.hidden + (self.attention_dim if self.attention else 0)


class TwinParams(NamedTuple):
    """One individual's twin (a cohort stacks each leaf along a leading individuals axis).

    Fields are in alphabetical order, as the dict they replaced, so leaves flatten in the same
    order. ``attention`` is None without temporal attention.
    """

    attention: AttentionParams | None
    cell: RecurrentParams
    mean: Dense  # head: predictive mean
    scale: Dense  # head: predictive scale, softplus(.) + min_scale


# a twin's architecture and parameters: the built-in cells, or a flax module
Spec = TwinSpec | FlaxSpec
Params = TwinParams | FlaxParams


def init_params(key: PRNGKeyArray, spec: Spec) -> Params:
    """Parameters of one individual's twin (the scale head starts at softplus(-1) ~ 0.31)."""
    if isinstance(spec, FlaxSpec):
        return flax_net.init(key, spec)
    kc, ka, km, ks = jax.random.split(key, 4)
    mean, scale = head_init(km, ks, spec.d_head, spec.n_features)
    return TwinParams(
        attention=attention_init(ka, spec.hidden, spec.attention_dim) if spec.attention else None,
        cell=get_cell(spec.cell).init(kc, spec.d_in, spec.hidden),
        mean=mean,
        scale=scale,
    )


def encode(params: TwinParams, spec: TwinSpec, x: Float[Array, "time d_in"], carry=None):
    return run_cell(spec.cell, params.cell, x, carry, remat_chunk=spec.remat_chunk)


def apply(
    params: Params, spec: Spec, series: Series
) -> tuple[Float[Array, "time features"], Float[Array, "time features"]]:
    """One-step-ahead Gaussian predictions of one individual's twin.

    Args:
      params: the twin's parameters (:func:`init_params`).
      spec: its architecture.
      series: one individual's series (``values, mask [time, features]``, ...).

    Returns:
      ``mean, scale [time, features]``: row t is the predictive Gaussian of ``values[t + 1]``.

    >>> spec = TwinSpec(n_features=2, n_interventions=1, n_static=0, hidden=4)
    >>> params = init_params(jax.random.key(0), spec)
    >>> series = Series(jnp.zeros((5, 2)), jnp.ones((5, 2), bool), jnp.zeros((5, 1)), jnp.zeros(0))
    >>> mean, scale = apply(params, spec, series)
    >>> mean.shape, bool((scale > 0).all())
    ((5, 2), True)
    """
    if isinstance(spec, FlaxSpec):
        return flax_net.apply(params, spec, series)
    _, hs = encode(params, spec, step_inputs(series))
    z = jnp.concatenate([hs, causal_attention(params.attention, hs)], -1) if spec.attention else hs
    return predict_head(params, spec, z)


def apply_windows(
    params: Params, spec: Spec, windows: Series
) -> tuple[Float[Array, "windows time features"], Float[Array, "windows time features"]]:
    """:func:`apply` for a batch of one individual's windows (``values, mask, interventions``
    with a leading windows axis, ``static`` shared): with ``spec.layout == "sequence"`` the
    windows run through the LSTM together (:func:`~twinjax.twins.sequence.lstm_sequence`),
    otherwise one ``apply`` per window."""
    if isinstance(spec, FlaxSpec) or spec.layout != "sequence":
        return jax.vmap(apply, in_axes=(None, None, WINDOW_AXES))(params, spec, windows)
    xs = jax.vmap(step_inputs, in_axes=(WINDOW_AXES,))(windows)  # [windows, time, d_in]
    _, hs = lstm_sequence(params.cell, jnp.swapaxes(xs, 0, 1), residuals=spec.residuals)
    hs = jnp.swapaxes(hs, 0, 1)  # [windows, time, hidden]
    if spec.attention:
        hs = jnp.concatenate([hs, jax.vmap(causal_attention, (None, 0))(params.attention, hs)], -1)
    return predict_head(params, spec, hs)


def masked_nll(mean, scale, values, mask, target_mask=None) -> Float[Array, ""]:
    """Mean Gaussian NLL of one-step predictions (row t predicts ``values[t + 1]``) over the
    observed targets, restricted to ``target_mask`` if given."""
    weight = mask[1:] if target_mask is None else mask[1:] & target_mask[1:]
    nll = gaussian_nll(mean[:-1], scale[:-1], jnp.where(weight, values[1:], 0.0))
    return jnp.sum(jnp.where(weight, nll, 0.0)) / jnp.maximum(jnp.sum(weight), 1)


def nll_loss(
    params: Params,
    spec: Spec,
    series: Series,
    target_mask: Bool[ArrayLike, "time features"] | None = None,
) -> Float[Array, ""]:
    """Mean Gaussian NLL of the one-step predictions over observed targets.

    Missing values (``mask`` False) never enter the loss nor the inputs; ``target_mask`` further
    restricts which targets count (e.g. one split segment).
    """
    mean, scale = apply(params, spec, series)
    return masked_nll(mean, scale, series.values, series.mask, target_mask)


def forecast(
    params: Params,
    spec: Spec,
    series: Series,
    future_interventions: Float[ArrayLike, "horizon kinds"],
    *,
    key: PRNGKeyArray | None = None,
) -> tuple[Float[Array, "horizon features"], Float[Array, "horizon features"]]:
    """Rolls the twin forward over the ``horizon`` grid steps after the history.

    ``future_interventions[k]`` is the planned intervention at history end + k (the counterfactual
    plan); output row k is the prediction for that same time. Each step feeds back the predicted
    mean, or with ``key`` a sample from the predictive Gaussian (vmap over keys for an ensemble
    whose spread includes the accumulation of uncertainty over the horizon; or
    :func:`~twinjax.twins.rollout.sample_paths`, which reads the history once for all paths).
    """
    start = rollout_start(params, spec, series, future_interventions.shape[0])
    return rollout_from(params, spec, start, series.static, future_interventions, key=key)


class RolloutStart(NamedTuple):
    """The twin after reading a history of ``t`` steps: the cell's carry, the attention memory
    ``[t + horizon, hidden]`` (zero beyond t) and the predictive Gaussian of step t."""

    carry: object
    memory: Float[Array, "steps hidden"]
    first: tuple[Float[Array, " features"], Float[Array, " features"]]
    t: int  # history length (static)


def _predict(params: TwinParams, spec: TwinSpec, h, memory, last):
    if not spec.attention:
        return predict_head(params, spec, h)
    visible = jnp.arange(memory.shape[0]) <= last
    context = attend(params.attention, h, memory, visible)
    return predict_head(params, spec, jnp.concatenate([h, context]))


def rollout_start(
    params: Params, spec: Spec, series: Series, horizon: int
) -> RolloutStart | FlaxStart:
    """Reads one individual's history (teacher forced) before a ``horizon``-step rollout."""
    if isinstance(spec, FlaxSpec):
        return flax_net.rollout_start(params, spec, series, horizon)
    t = series.values.shape[0]
    carry, hs = encode(params, spec, step_inputs(series))
    memory = jnp.concatenate([hs, jnp.zeros((horizon, spec.hidden), hs.dtype)])
    return RolloutStart(carry, memory, _predict(params, spec, hs[-1], memory, t - 1), t)


def rollout_from(
    params: Params,
    spec: Spec,
    start: RolloutStart | FlaxStart,
    static: Float[ArrayLike, " covariates"],
    future_interventions: Float[ArrayLike, "horizon kinds"],
    *,
    key: PRNGKeyArray | None = None,
) -> tuple[Float[Array, "horizon features"], Float[Array, "horizon features"]]:
    """The rollout of :func:`forecast` from a :func:`rollout_start` (several paths can share
    one start: the history is read once)."""
    if isinstance(spec, FlaxSpec):
        return flax_net.rollout_from(params, spec, start, static, future_interventions, key=key)
    cell = get_cell(spec.cell)
    t, horizon = start.t, future_interventions.shape[0]
    keys = jax.random.split(key, horizon) if key is not None else jnp.zeros((horizon, 0))

    def _step(state, inp):
        carry, memory, (mean, scale) = state
        k, (plan, sample_key) = inp
        y = mean if key is None else mean + scale * jax.random.normal(sample_key, mean.shape)
        x = jnp.concatenate([y, jnp.ones_like(y), plan, static])
        carry = cell.step(params.cell, carry, x)
        h = cell.output(carry)
        memory = memory.at[t + k].set(h)
        pred = _predict(params, spec, h, memory, t + k)
        return (carry, memory, pred), pred

    first = start.first
    steps = (jnp.arange(horizon - 1), (future_interventions[:-1], keys[: horizon - 1]))
    _, (means, scales) = jax.lax.scan(_step, (start.carry, start.memory, first), steps)
    return (jnp.concatenate([first[0][None], means]), jnp.concatenate([first[1][None], scales]))
