"""Stochastic SIR/SEIR on contact layers: a pure step, time in ``lax.scan``, ensembles by ``vmap``.

Order inside a step follows starsim (``step_state`` then ``infect``): first E->I and I->R
progressions of agents infected in earlier steps (seeds count as infected during step 0), then
transmission from the agents infectious after progression. With exponential durations of mean
``1 / gamma`` (starsim ``dur_inf=ss.expon(scale=1/gamma)``) recovery in a step has probability
``1 - exp(-gamma dt)``, so an agent infected in step ``t`` transmits in steps ``t+1, t+2, ...``
until it recovers at the start of one of them.
"""

import math
from typing import NamedTuple

import jax
import jax.numpy as jnp
from jaxtyping import Array, Float, Int, PRNGKeyArray

from twinjax.abm.agents import (
    Agents,
    E,
    I,
    R,
    S,
    agent_uniforms,
    group_counts,
    population_uniforms,
)
from twinjax.abm.contacts import Layer, escape_prob
from twinjax.abm.interventions import Policy, apply_policy, layer_scales


class SEIRParams(NamedTuple):
    """Progression rates per unit time; ``sigma=None`` gives SIR (infected are infectious at once)."""

    gamma: Float[Array, ""] | float
    sigma: Float[Array, ""] | float | None = None


class EpidemicState(NamedTuple):
    agents: Agents
    t: Int[Array, ""]


class StepOutput(NamedTuple):
    """Per-step observations: agents per (group, status) after the step and new infections."""

    counts: Float[Array, "groups statuses"]
    new_infections: Float[Array, " groups"]


def init(agents: Agents) -> EpidemicState:
    return EpidemicState(agents=agents, t=jnp.int32(0))


def _progress(status, u, params: SEIRParams, dt, t):
    q_rec = -jnp.expm1(-jnp.asarray(params.gamma, jnp.float32) * dt)
    started = t > 0  # seeds are infected during step 0, so they first progress in step 1
    out = jnp.where((status == I) & (u < q_rec) & started, R, status)
    if params.sigma is not None:
        q_lat = -jnp.expm1(-jnp.asarray(params.sigma, jnp.float32) * dt)
        out = jnp.where((status == E) & (u < q_lat) & started, I, out)
    return out.astype(jnp.int8)


def step(
    state: EpidemicState,
    key: PRNGKeyArray,
    params: SEIRParams,
    layers: tuple[Layer, ...],
    *,
    dt: float = 1.0,
    n_groups: int = 1,
    policy: Policy | None = None,
    axis_name: str | None = None,
    n_blocks: int = 1,
) -> tuple[EpidemicState, StepOutput]:
    """One step for all agents (this device's block when ``axis_name`` is set).

    Args:
        state: the agents and the step counter.
        key: PRNG key of this step.
        params: progression rates.
        layers: the contact layers (their infection routes combine independently).
        dt: step length, in the unit of the rates.
        n_groups: number of reporting groups in ``agents.group``.
        policy: interventions applied at the start of the step, or None.
        axis_name: the agents' mesh axis inside ``jax.shard_map`` (None: not sharded).
        n_blocks: uniforms are drawn in this many blocks (match a sharded run's device count).

    Returns:
        ``(state, output)``: the state after the step and its :class:`StepOutput` (population
        totals when sharded).
    """
    agents, t = state
    n_local = agents.status.shape[0]
    k_u, k_pol, k_net = jax.random.split(key, 3)
    if axis_name is None:
        u = population_uniforms(k_u, n_local, n_blocks)
    else:
        u = agent_uniforms(k_u, n_local, jax.lax.axis_index(axis_name))
    if policy is not None:
        u_pol = (
            population_uniforms(k_pol, n_local, n_blocks)
            if axis_name is None
            else agent_uniforms(k_pol, n_local, jax.lax.axis_index(axis_name))
        )
        agents = apply_policy(agents, policy, t, u_pol)
        scale = layer_scales(policy, t, len(layers))
        layers = tuple(ly._replace(beta=ly.beta * scale[i]) for i, ly in enumerate(layers))
    status = _progress(agents.status, u, params, dt, t)
    infectious = (status == I).astype(jnp.float32) * agents.rel_trans
    sus = (status == S).astype(jnp.float32) * agents.rel_sus
    esc = escape_prob(k_net, layers, infectious, sus, dt, axis_name=axis_name)
    new = (status == S) & (u + esc < 1.0)
    status = jnp.where(new, I if params.sigma is None else E, status).astype(jnp.int8)
    agents = agents._replace(status=status)
    if n_groups == 1:
        new_by_group = jnp.sum(new, dtype=jnp.float32)[None]
    else:
        new_by_group = jax.ops.segment_sum(new.astype(jnp.float32), agents.group, n_groups)
    out = StepOutput(group_counts(status, agents.group, n_groups), new_by_group)
    if axis_name is not None:
        out = jax.lax.psum(out, axis_name)
    return EpidemicState(agents, t + 1), out


def simulate(
    key: PRNGKeyArray,
    agents: Agents,
    params: SEIRParams,
    layers: tuple[Layer, ...],
    n_steps: int,
    **step_kwargs,
) -> tuple[EpidemicState, StepOutput]:
    """Runs ``n_steps`` steps in ``lax.scan``; outputs are stacked along a leading time axis.

    Args:
        key: PRNG key, split into one key per step.
        agents: the initial agents (e.g. from :func:`~twinjax.abm.init_agents`).
        params: progression rates.
        layers: the contact layers.
        n_steps: number of steps.
        **step_kwargs: keyword arguments of :func:`step` (``dt``, ``n_groups``, ``policy``...).

    Returns:
        ``(final_state, outputs)`` with ``outputs.counts`` of shape ``[n_steps, groups, 4]`` and
        ``outputs.new_infections`` of shape ``[n_steps, groups]``.

    Example:
        >>> import jax
        >>> from twinjax.abm import Layer, SEIRParams, WellMixed, init_agents
        >>> agents = init_agents(jax.random.key(0), 500, 0.02)
        >>> layers = (Layer(WellMixed(), 0.6),)
        >>> state, out = simulate(jax.random.key(1), agents, SEIRParams(gamma=0.2), layers, 20)
        >>> out.counts.shape, float(out.counts[-1].sum())
        ((20, 1, 4), 500.0)
        >>> 0.0 < float(attack_rate(state)) <= 1.0
        True
    """
    body = lambda s, k: step(s, k, params, layers, **step_kwargs)
    return jax.lax.scan(body, init(agents), jax.random.split(key, n_steps))


def attack_rate(state: EpidemicState) -> Float[Array, ""]:
    """Fraction of agents ever infected (not susceptible at the end).

    Args:
        state: a final state from :func:`simulate`.

    Returns:
        The attack rate, a scalar in ``[0, 1]``.
    """
    return jnp.mean((state.agents.status != S).astype(jnp.float32))


def final_size(r0: float) -> float:
    """Solution ``r > 0`` of ``r = 1 - exp(-R0 r)`` (0 for R0 <= 1), via the Lambert W function.

    Args:
        r0: the basic reproduction number.

    Returns:
        The final epidemic size of the deterministic SIR model, as a fraction.

    Example:
        >>> round(final_size(2.0), 4)
        0.7968
    """
    from scipy.special import lambertw

    if r0 <= 1.0:
        return 0.0
    return float(1.0 + lambertw(-r0 * math.exp(-r0)).real / r0)


def mean_infectious_steps(gamma: float, dt: float) -> float:
    """Expected number of steps in which an agent infected in step ``t`` transmits.

    It recovers at the start of each later step w.p. ``q = 1 - exp(-gamma dt)``, so the count is
    geometric on ``{0, 1, ...}`` with mean ``(1 - q) / q = 1 / (exp(gamma dt) - 1)``.
    """
    return 1.0 / math.expm1(gamma * dt)


def well_mixed_r0(beta: float, gamma: float, dt: float) -> float:
    """Basic reproduction number of the discrete-time mass-action model (-> beta / gamma as dt -> 0)."""
    return beta * dt * mean_infectious_steps(gamma, dt)
