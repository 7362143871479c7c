"""Agent-based population simulator: agents as arrays, contact layers, pure steps in lax.scan.

The core (agents, networks, contact layers, SIR/SEIR step, interventions) is re-exported here.
Further public modules: ``relaxed`` (differentiable simulator), ``calibration`` (optax and NumPyro),
``sharding`` (``jax.shard_map`` over agents),
``population`` (synthetic multi-layer population), ``commuting`` and ``finance`` (scenario
models), ``peers`` (the starsim/Mesa versions of the benchmark model), ``rng`` (hash uniforms).
Agents driven by their own twins live in ``twinjax.adapters.twin_agents`` (they join two layers).
"""

from twinjax.abm.agents import Agents, E, I, R, S, group_counts, init_agents, population_uniforms
from twinjax.abm.contacts import Layer, WellMixed, contact_prob, escape_prob
from twinjax.abm.epidemic import (
    EpidemicState,
    SEIRParams,
    StepOutput,
    attack_rate,
    final_size,
    mean_infectious_steps,
    simulate,
    step,
    well_mixed_r0,
)
from twinjax.abm.interventions import Policy
from twinjax.abm.networks import (
    EdgeList,
    RandomNet,
    clustered,
    compact,
    degrees,
    erdos_renyi,
    fixed_degree,
    household,
    household_ids,
    scale_free,
    small_world,
)

__all__ = [
    "E",
    "I",
    "R",
    "S",
    "Agents",
    "EdgeList",
    "EpidemicState",
    "Layer",
    "Policy",
    "RandomNet",
    "SEIRParams",
    "StepOutput",
    "WellMixed",
    "attack_rate",
    "clustered",
    "compact",
    "contact_prob",
    "degrees",
    "erdos_renyi",
    "escape_prob",
    "final_size",
    "fixed_degree",
    "group_counts",
    "household",
    "household_ids",
    "init_agents",
    "mean_infectious_steps",
    "population_uniforms",
    "scale_free",
    "simulate",
    "small_world",
    "step",
    "well_mixed_r0",
]
