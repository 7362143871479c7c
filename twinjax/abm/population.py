"""A synthetic multi-layer population: households, schools/workplaces, community; age groups."""

from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, ArrayLike, Float, Int, PRNGKeyArray

from twinjax.abm.networks import EdgeList, clustered, compact, erdos_renyi, household_ids

AGE_GROUPS = ("0-17", "18-64", "65+")
HOUSEHOLD_SIZE_PROBS = (0.28, 0.34, 0.16, 0.15, 0.07)  # households of 1..5


class Population(NamedTuple):
    """Agents' age group and the contact layers ``household``, ``school_work``, ``community``."""

    age_group: Int[Array, " n"]
    household: EdgeList
    school_work: EdgeList
    community: EdgeList


def _places(key, eligible, place_size: int) -> EdgeList:
    """Complete graphs on places of ``place_size`` eligible agents drawn at random."""
    n = eligible.shape[0]
    order = jnp.argsort(jnp.where(eligible, jax.random.uniform(key, (n,)), 2.0))
    rank = jnp.arange(n)
    place = jnp.where(eligible[order], rank // place_size, -1 - rank)  # ineligible: own place
    edges = clustered(place, place_size)
    return edges._replace(
        src=order[edges.src].astype(jnp.int32), dst=order[edges.dst].astype(jnp.int32)
    )


def synthetic_population(
    key: PRNGKeyArray,
    n: int,
    *,
    age_probs: Float[ArrayLike, " groups"] | tuple[float, ...] = (0.22, 0.60, 0.18),
    household_size_probs: Float[ArrayLike, " sizes"] | tuple[float, ...] = HOUSEHOLD_SIZE_PROBS,
    class_size: int = 20,
    workplace_size: int = 10,
    community_degree: float = 4.0,
) -> Population:
    """Households of 1-5 (consecutive agents), classes for 0-17, workplaces for 18-64, and a
    random community layer; ages drawn independently of households. Padding edges are dropped."""
    k_age, k_hh, k_school, k_work, k_comm = jax.random.split(key, 5)
    age = jax.random.categorical(k_age, jnp.log(jnp.asarray(age_probs)), shape=(n,))
    hh = household_ids(k_hh, n, jnp.asarray(household_size_probs))
    household = clustered(hh, len(household_size_probs))
    school = _places(k_school, age == 0, class_size)
    work = _places(k_work, age == 1, workplace_size)
    school_work = EdgeList(*(jnp.concatenate([a, b]) for a, b in zip(school, work, strict=True)))
    community = erdos_renyi(k_comm, n, community_degree)
    layers = (compact(household), compact(school_work), compact(community))
    return Population(age.astype(jnp.int32), *layers)


def band(
    x: Float[ArrayLike, "..."], axis: int = 0, level: float = 0.9
) -> tuple[Float[ArrayLike, "..."], ...]:
    """Mean and equal-tailed ``level`` band of ``x`` across ``axis`` (e.g. seeds)."""
    x = np.asarray(x)
    lo, hi = np.quantile(x, [(1 - level) / 2, (1 + level) / 2], axis=axis)
    return x.mean(axis=axis), lo, hi
