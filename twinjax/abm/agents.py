"""Agents as a struct of arrays: one array per attribute, agent ``i`` is row ``i`` of each."""

from typing import NamedTuple

import jax
import jax.numpy as jnp
from jaxtyping import Array, Float, Int, PRNGKeyArray

from twinjax.abm.rng import hash_uniforms

# Disease status codes (int8).
S, E, I, R = 0, 1, 2, 3  # noqa: E741 (the compartments of the SEIR model)
N_STATUS = 4


class Agents(NamedTuple):
    """Per-agent disease attributes. ``group`` is a reporting subgroup (age band, income...)."""

    status: Int[Array, " n"]
    rel_sus: Float[Array, " n"]
    rel_trans: Float[Array, " n"]
    group: Int[Array, " n"]


def init_agents(
    key: PRNGKeyArray,
    n: int,
    init_prev: float,
    *,
    group: Int[Array, " n"] | None = None,
    rel_sus: Float[Array, " n"] | None = None,
) -> Agents:
    """Everyone susceptible except a Bernoulli(``init_prev``) draw of infectious seeds (as starsim).

    Args:
        key: PRNG key for the seeds.
        n: number of agents.
        init_prev: probability that an agent starts infectious.
        group: reporting subgroup of each agent (default: all in group 0).
        rel_sus: susceptibility multipliers (default: 1).

    Returns:
        The :class:`Agents` (status int8, multipliers float32, group int32).

    Example:
        >>> import jax
        >>> agents = init_agents(jax.random.key(0), 1000, 0.1)
        >>> agents.status.shape, 50 < int((agents.status == I).sum()) < 150
        ((1000,), True)
    """
    seeds = jax.random.uniform(key, (n,)) < init_prev
    status = jnp.where(seeds, I, S).astype(jnp.int8)
    ones = jnp.ones(n, jnp.float32)
    return Agents(
        status=status,
        rel_sus=ones if rel_sus is None else jnp.asarray(rel_sus, jnp.float32),
        rel_trans=ones,
        group=jnp.zeros(n, jnp.int32) if group is None else jnp.asarray(group, jnp.int32),
    )


def agent_uniforms(
    key: PRNGKeyArray, n_local: int, block: int | Int[Array, ""]
) -> Float[Array, " n"]:
    """Uniforms for one block of agents; blocks are the shards of a sharded run.

    A serial run with ``n_blocks`` blocks draws exactly the numbers of a run sharded over
    ``n_blocks`` devices, which is what makes the two comparable.
    """
    return hash_uniforms(jax.random.fold_in(key, block), n_local)


def population_uniforms(key: PRNGKeyArray, n: int, n_blocks: int = 1) -> Float[Array, " n"]:
    """All agents' uniforms, drawn block by block (see :func:`agent_uniforms`)."""
    blocks = jnp.arange(n_blocks)
    return jax.vmap(lambda b: agent_uniforms(key, n // n_blocks, b))(blocks).reshape(n)


def group_counts(
    status: Int[Array, " n"], group: Int[Array, " n"], n_groups: int
) -> Float[Array, "groups statuses"]:
    """Number of agents in each (group, status) cell.

    Args:
        status: each agent's status code (``S``, ``E``, ``I``, ``R``).
        group: each agent's group in ``0 .. n_groups - 1``.
        n_groups: number of groups (static).

    Returns:
        Counts ``[n_groups, 4]`` (float32).
    """
    if n_groups == 1:
        codes = jnp.arange(N_STATUS, dtype=status.dtype)
        return jnp.sum(status[None, :] == codes[:, None], axis=1, dtype=jnp.float32)[None, :]
    onehot = jax.nn.one_hot(status, N_STATUS, dtype=jnp.float32)
    return jax.ops.segment_sum(onehot, group, n_groups)
