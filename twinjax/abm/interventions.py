"""Epidemic interventions applied inside the step: vaccination, distancing, testing and isolation."""

from typing import NamedTuple

import jax.numpy as jnp
from jaxtyping import Array, Bool, Float, Int

from twinjax.abm.agents import Agents, I, S


class Policy(NamedTuple):
    """An intervention schedule (all times in steps; a start of -1 or a rate of 0 switches it off).

    - vaccination: from ``vax_start``, a fraction ``vax_rate`` of still-susceptible agents per
      step is vaccinated (``group`` eligible where ``vax_groups[group]``), susceptibility times
      ``1 - vax_efficacy``;
    - distancing: from ``distancing_start``, layer ``l``'s transmission rate times ``layer_scale[l]``;
    - testing and isolation: each infectious agent is detected w.p. ``test_rate`` per step and
      then transmits times ``1 - isolation_efficacy``.
    """

    vax_start: Int[Array, ""] | int = -1
    vax_rate: Float[Array, ""] | float = 0.0
    vax_efficacy: Float[Array, ""] | float = 0.0
    vax_groups: Bool[Array, " groups"] | None = None
    distancing_start: Int[Array, ""] | int = -1
    layer_scale: Float[Array, " layers"] | None = None
    test_rate: Float[Array, ""] | float = 0.0
    isolation_efficacy: Float[Array, ""] | float = 0.0


def _active(start, t):
    return (jnp.asarray(start) >= 0) & (t >= start)


def layer_scales(policy: Policy, t: Int[Array, ""], n_layers: int) -> Float[Array, " layers"]:
    """Per-layer multipliers of the transmission rate at step ``t``."""
    if policy.layer_scale is None:
        return jnp.ones(n_layers)
    return jnp.where(_active(policy.distancing_start, t), policy.layer_scale, 1.0)


def apply_policy(
    agents: Agents, policy: Policy, t: Int[Array, ""], u: Float[Array, " n"]
) -> Agents:
    """Vaccinates and isolates agents for step ``t`` using one uniform per agent ``u``."""
    eligible = agents.status == S
    if policy.vax_groups is not None:
        eligible = eligible & policy.vax_groups[agents.group]
    vax = eligible & _active(policy.vax_start, t) & (u < policy.vax_rate) & (agents.rel_sus >= 1.0)
    rel_sus = jnp.where(vax, agents.rel_sus * (1.0 - policy.vax_efficacy), agents.rel_sus)
    detect = (agents.status == I) & (u < policy.test_rate) & (agents.rel_trans >= 1.0)
    rel_trans = jnp.where(detect, 1.0 - policy.isolation_efficacy, agents.rel_trans)
    return agents._replace(rel_sus=rel_sus, rel_trans=jnp.asarray(rel_trans, jnp.float32))
