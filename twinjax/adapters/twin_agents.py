"""Twin-driven agents: each agent's susceptibility comes from its own fitted twin, in the loop.

Agent ``i`` owns twin ``i`` (params stacked along a leading axis, as the core cohort API) and a
sliding window of its recent streams (a :class:`~twinjax.data.Series` with a leading agents axis:
``values, mask [agents, window, features]``, ``interventions``, ``static [agents, covariates]``). In every epidemic step the vmapped twins predict each
agent's next values; a chosen stream's standardized prediction sets the agent's susceptibility
``rel_sus = clip(1 + strength * z, lo, hi)``; then the epidemic step runs; then every window
advances by the twin's own prediction, with a chosen stream of currently infectious agents
replaced by a "sick" value, so the epidemic feeds back into the twins' next predictions.
"""

from typing import Literal, NamedTuple

import jax
import jax.numpy as jnp
import optax
from jaxtyping import Array, Float, PRNGKeyArray

from twinjax.abm import Agents, EpidemicState, I, Layer, SEIRParams, StepOutput
from twinjax.abm.epidemic import init, step
from twinjax.data import Series
from twinjax.twins import (
    TwinParams,
    TwinSpec,
    apply,
    init_params,
    nll_loss,
    stream_init,
    stream_step,
)


class TwinCoupling(NamedTuple):
    feature: int  # stream that sets susceptibility
    ref_mean: float
    ref_sd: float
    strength: float
    sick_feature: int  # stream overwritten while infectious
    sick_value: float
    lo: float = 0.2
    hi: float = 3.0


def fit_twins(
    key: PRNGKeyArray, spec: TwinSpec, windows: Series, *, steps: int = 100, lr: float = 1e-2
) -> TwinParams:
    """One twin per agent fitted on its own window by Adam (vmapped over agents)."""
    n = windows.values.shape[0]
    params = jax.vmap(lambda k: init_params(k, spec))(jax.random.split(key, n))
    opt = optax.adam(lr)
    grad = jax.vmap(jax.grad(lambda p, series: nll_loss(p, spec, series)))

    @jax.jit
    def update(carry, _):
        p, state = carry
        g = grad(p, windows)
        upd, state = jax.vmap(opt.update)(g, state)
        return (optax.apply_updates(p, upd), state), None

    (params, _), _ = jax.lax.scan(update, (params, jax.vmap(opt.init)(params)), None, steps)
    return params


def predict_next(params, spec: TwinSpec, windows: Series):
    """Each agent's twin prediction of its next values, ``mean, scale`` of shape ``[agents, F]``."""
    mean, scale = jax.vmap(apply, in_axes=(0, None, 0))(params, spec, windows)
    return mean[:, -1], scale[:, -1]


def susceptibility(mean: Float[Array, "agents features"], c: TwinCoupling) -> Float[Array, " n"]:
    z = (mean[:, c.feature] - c.ref_mean) / c.ref_sd
    return jnp.clip(1.0 + c.strength * z, c.lo, c.hi)


def advance(windows: Series, mean, infectious, c: TwinCoupling) -> Series:
    """Appends the predicted values (sick stream overwritten for infectious agents)."""
    nxt = sick_override(mean, infectious, c)
    roll = lambda a, new: jnp.concatenate([a[:, 1:], new[:, None]], axis=1)
    return windows._replace(
        values=roll(windows.values, nxt),
        mask=roll(windows.mask, jnp.ones_like(windows.mask[:, -1])),
        interventions=roll(windows.interventions, jnp.zeros_like(windows.interventions[:, -1])),
    )


def simulate_with_twins(
    key: PRNGKeyArray,
    agents: Agents,
    params: SEIRParams,
    layers: tuple[Layer, ...],
    n_steps: int,
    twin_params,
    spec: TwinSpec,
    windows: Series,
    coupling: TwinCoupling,
    *,
    mode: Literal["carry", "window"] = "carry",
    cache: int | None = None,
    **step_kwargs,
) -> tuple[EpidemicState, tuple[StepOutput, Float[Array, "time agents"]]]:
    """The epidemic with susceptibility set by each agent's twin at every step.

    Uses the same step keys as :func:`twinjax.abm.epidemic.simulate`, so ``strength=0`` gives
    exactly the uncoupled run. Also returns the susceptibility trajectories.

    Args:
      mode: ``carry`` (default) encodes each agent's window once and then carries its twin's
        recurrent state, one cell step per agent per epidemic step
        (:func:`twinjax.twins.stream_step`); ``window`` re-runs every twin over its sliding
        window of the last ``W`` steps at every step (W times the work, and the twin forgets
        what slid out of the window).
      cache: with ``carry`` and attention, the hidden states attention sees (default ``W``).
    """
    if mode == "carry":
        return _simulate_carried(
            key, agents, params, layers, n_steps, twin_params, spec, windows, coupling,
            cache=cache or windows.values.shape[1], **step_kwargs,
        )  # fmt: skip

    def _step(carry, k):
        state, win = carry
        mean, _ = predict_next(twin_params, spec, win)
        rel_sus = susceptibility(mean, coupling)
        state = state._replace(agents=state.agents._replace(rel_sus=rel_sus))
        state, out = step(state, k, params, layers, **step_kwargs)
        win = advance(win, mean, state.agents.status == I, coupling)
        return (state, win), (out, rel_sus)

    carry = (init(agents), windows)
    (state, _), outs = jax.lax.scan(_step, carry, jax.random.split(key, n_steps))
    return state, outs


def sick_override(mean, infectious, c: TwinCoupling):
    """The values fed back: the twins' predictions, the sick stream set for infectious agents."""
    return mean.at[:, c.sick_feature].set(
        jnp.where(infectious, c.sick_value, mean[:, c.sick_feature])
    )


def _simulate_carried(
    key, agents, params, layers, n_steps, twin_params, spec, windows, coupling, *, cache,
    **step_kwargs,
):  # fmt: skip
    start = jax.vmap(lambda p, w: stream_init(p, spec, w, cache=cache))(twin_params, windows)
    feed = jax.vmap(lambda p, s, v, m, u: stream_step(p, spec, s, v, m, u))
    kinds = windows.interventions.shape[-1]

    def _step(carry, k):
        state, twins = carry
        rel_sus = susceptibility(twins.mean, coupling)
        state = state._replace(agents=state.agents._replace(rel_sus=rel_sus))
        state, out = step(state, k, params, layers, **step_kwargs)
        values = sick_override(twins.mean, state.agents.status == I, coupling)
        n = values.shape[0]
        twins = feed(twin_params, twins, values, jnp.ones_like(values, bool), jnp.zeros((n, kinds)))
        return (state, twins), (out, rel_sus)

    (state, _), outs = jax.lax.scan(_step, (init(agents), start), jax.random.split(key, n_steps))
    return state, outs
