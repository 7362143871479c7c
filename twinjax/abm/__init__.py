"""Agent-based population simulator: agents as arrays, contact layers, pure steps in lax.scan."""

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
