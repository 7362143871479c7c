"""Contact networks as undirected edge lists, and their generators.

An :class:`EdgeList` stores each undirected contact once as ``(src[e], dst[e])`` with a weight
(0 marks padding, so every generator returns arrays of a static size and can run under ``jit``).
Transmission uses both directions. A :class:`RandomNet` is the dynamic random network of starsim's
``ss.RandomNet``: every agent draws ``n_contacts / 2`` fresh partners uniformly at every step, so it
is never materialized (see :mod:`twinjax.abm.contacts`).
"""

from dataclasses import dataclass
from functools import partial
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, Float, Int, PRNGKeyArray


class EdgeList(NamedTuple):
    """Undirected contacts ``src[e] -- dst[e]`` with weight ``weight[e]`` (0: padding)."""

    src: Int[Array, " edges"]
    dst: Int[Array, " edges"]
    weight: Float[Array, " edges"]


@jax.tree_util.register_static
@dataclass(frozen=True)
class RandomNet:
    """starsim's dynamic ``RandomNet``: ``n_contacts`` contacts per agent, redrawn every step.

    A static pytree node (no array leaves), so ``n_contacts`` stays a Python int under ``jit``.
    """

    n_contacts: int


def _edges(src, dst, valid) -> EdgeList:
    valid = valid & (src != dst)
    return EdgeList(src.astype(jnp.int32), dst.astype(jnp.int32), valid.astype(jnp.float32))


@partial(jax.jit, static_argnames=("n", "mean_degree"))
def erdos_renyi(key: PRNGKeyArray, n: int, mean_degree: float) -> EdgeList:
    """G(n, m) with ``m = n * mean_degree / 2`` uniform pairs (self-loops dropped).

    Args:
        key: PRNG key.
        n: number of agents (static).
        mean_degree: expected number of contacts per agent (static).

    Returns:
        An :class:`EdgeList` of ``m`` edges; self-loops are kept as padding (weight 0).

    Example:
        >>> import jax
        >>> edges = erdos_renyi(jax.random.key(0), 100, 4.0)
        >>> edges.src.shape, float(degrees(edges, 100).mean()) <= 4.0
        ((200,), True)
    """
    m = int(round(n * mean_degree / 2))
    ends = jax.random.randint(key, (2, m), 0, n)
    return _edges(ends[0], ends[1], jnp.ones(m, bool))


@partial(jax.jit, static_argnames=("n", "degree"))
def fixed_degree(key: PRNGKeyArray, n: int, degree: int) -> EdgeList:
    """Configuration model: every agent has ``degree`` stubs, paired by a random permutation."""
    stubs = jax.random.permutation(key, jnp.repeat(jnp.arange(n), degree))
    half = (n * degree) // 2
    return _edges(stubs[:half], stubs[half : 2 * half], jnp.ones(half, bool))


@partial(jax.jit, static_argnames=("n",))
def household_ids(
    key: PRNGKeyArray, n: int, size_probs: Float[Array, " sizes"]
) -> Int[Array, " n"]:
    """Consecutive agents grouped into households of size ``s + 1`` with probability ``size_probs[s]``."""
    sizes = jax.random.categorical(key, jnp.log(jnp.asarray(size_probs)), shape=(n,)) + 1
    starts = jnp.cumsum(sizes) - sizes  # more households than needed; agents fill them in order
    return jnp.searchsorted(starts, jnp.arange(n), side="right") - 1


@partial(jax.jit, static_argnames=("max_size",))
def clustered(group: Int[Array, " n"], max_size: int) -> EdgeList:
    """All pairs inside each group of consecutive agents (households, classrooms) of at most ``max_size``."""
    n = group.shape[0]
    i = jnp.repeat(jnp.arange(n), max_size - 1)
    j = i + jnp.tile(jnp.arange(1, max_size), n)
    valid = j < n
    j = jnp.minimum(j, n - 1)
    return _edges(i, j, valid & (group[i] == group[j]))


def household(key: PRNGKeyArray, n: int, size_probs: Float[Array, " sizes"]) -> EdgeList:
    """Household-clustered network: complete graphs inside households (see :func:`household_ids`)."""
    return clustered(household_ids(key, n, size_probs), len(size_probs))


@partial(jax.jit, static_argnames=("n", "degree"))
def small_world(
    key: PRNGKeyArray, n: int, degree: int, rewire: float | Float[Array, ""]
) -> EdgeList:
    """Watts-Strogatz: ring lattice to ``degree / 2`` neighbours each side, ends rewired w.p. ``rewire``."""
    half = degree // 2
    src = jnp.repeat(jnp.arange(n), half)
    dst = (src + jnp.tile(jnp.arange(1, half + 1), n)) % n
    k1, k2 = jax.random.split(key)
    flip = jax.random.uniform(k1, src.shape) < rewire
    dst = jnp.where(flip, jax.random.randint(k2, src.shape, 0, n), dst)
    return _edges(src, dst, jnp.ones(src.shape, bool))


@partial(jax.jit, static_argnames=("n", "mean_degree", "exponent"))
def scale_free(key: PRNGKeyArray, n: int, mean_degree: float, exponent: float = 2.5) -> EdgeList:
    """Chung-Lu graph with power-law expected degrees ``w_i ~ (i + 1) ** (-1 / (exponent - 1))``.

    Both ends of each of the ``n * mean_degree / 2`` edges are drawn in proportion to ``w``, so
    the degree distribution has a power-law tail with the given exponent.
    """
    m = int(round(n * mean_degree / 2))
    w = jnp.arange(1, n + 1, dtype=jnp.float32) ** (-1.0 / (exponent - 1))
    cdf = jnp.cumsum(w) / jnp.sum(w)
    ends = jnp.searchsorted(cdf, jax.random.uniform(key, (2, m)))  # inverse-CDF draws
    return _edges(jnp.minimum(ends[0], n - 1), jnp.minimum(ends[1], n - 1), jnp.ones(m, bool))


def compact(edges: EdgeList) -> EdgeList:
    """Drops padding edges (weight 0); host-side, so the result has a data-dependent size."""
    keep = np.asarray(edges.weight) > 0
    return EdgeList(*(jnp.asarray(np.asarray(a)[keep]) for a in edges))


@partial(jax.jit, static_argnames=("n",))
def degrees(edges: EdgeList, n: int) -> Float[Array, " n"]:
    """Weighted degree of every agent."""
    w = edges.weight
    return jax.ops.segment_sum(w, edges.src, n) + jax.ops.segment_sum(w, edges.dst, n)
