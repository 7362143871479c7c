"""Force of infection from contact layers, as a per-agent log escape probability.

A susceptible agent ``v`` escapes infection in a step with probability ``exp(log_escape[v])``;
every layer adds its own term, so layers combine as independent routes (as in starsim, where
duplicate infections across networks are dropped). ``infectious`` is the per-agent infectious
weight (``is_infectious * rel_trans``) and ``rel_sus`` the susceptibility multiplier.

Per-contact transmission rates ``beta`` are per unit time; the per-step probability on one contact
is ``1 - exp(-beta * dt)`` (starsim's ``ss.perday(beta).to_prob(dt)``).

In a sharded run (``axis_name`` set, inside ``jax.shard_map``) the arrays hold this device's
agents; population totals are ``psum``-ed and the infectious vector is all-gathered for edges.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple

import jax
import jax.numpy as jnp
from jaxtyping import Array, Float, PRNGKeyArray

from twinjax.abm.networks import EdgeList, RandomNet


@jax.tree_util.register_static
@dataclass(frozen=True)
class WellMixed:
    """Mass action: every pair of agents is in contact; ``beta`` is the total contact rate."""


class Layer(NamedTuple):
    """A contact route: a network (EdgeList, RandomNet or WellMixed) and its transmission rate."""

    network: EdgeList | RandomNet | WellMixed
    beta: Float[Array, ""] | float


def contact_prob(beta, dt) -> Float[Array, "..."]:
    """Per-contact, per-step transmission probability of a rate ``beta``."""
    return -jnp.expm1(-jnp.asarray(beta, jnp.float32) * dt)


def _total(x, axis_name):
    s = jnp.sum(x)
    return s if axis_name is None else jax.lax.psum(s, axis_name)


def _gather(x, axis_name):
    return x if axis_name is None else jax.lax.all_gather(x, axis_name, tiled=True)


def edge_log_escape(
    edges: EdgeList,
    p: Float[Array, ""],
    infectious: Float[Array, " n"],
    rel_sus: Float[Array, " n"],
) -> Float[Array, " n"]:
    """Log escape probability through an edge list, both directions of every edge."""
    n = infectious.shape[0]
    s, d, w = edges.src, edges.dst, edges.weight
    to_dst = w * jnp.log1p(-p * infectious[s] * rel_sus[d])
    to_src = w * jnp.log1p(-p * infectious[d] * rel_sus[s])
    idx = jnp.concatenate([d, s])
    return jax.ops.segment_sum(jnp.concatenate([to_dst, to_src]), idx, n)


def random_net_log_escape(
    key: PRNGKeyArray,
    net: RandomNet,
    p: Float[Array, ""],
    infectious: Float[Array, " n"],
    rel_sus: Float[Array, " n"],
    *,
    n_total: int,
    axis_name: str | None = None,
    chunk: int = 1 << 14,
) -> Float[Array, " n"]:
    """Log escape probability through starsim's dynamic RandomNet, sampled without edges.

    Each agent owns ``k = n_contacts / 2`` edges per step to uniform partners. For a susceptible
    ``v``: its own ``k`` edges reach an infectious agent independently with probability
    ``I / N``; the infectious agents' ``k I`` edges transmit w.p. ``p`` each, and the ``M ~
    Binomial(k I, p)`` successful ones land on uniform targets (drawn in chunks, so the cost grows
    with ``M``, not with ``N k``). Both parts are exactly the edge-level process when infectious
    weights are 0/1 (rel_trans other than 0/1 is not supported on this layer).
    """
    k = net.n_contacts // 2
    n_local = infectious.shape[0]
    n_inf = _total(infectious, axis_name)
    own = k * jnp.log1p(-p * rel_sus * n_inf / n_total)
    k_m, k_t = jax.random.split(key)
    m = jax.random.binomial(k_m, k * n_inf, p).astype(jnp.int32)
    offset = 0 if axis_name is None else jax.lax.axis_index(axis_name) * n_local

    def body(carry):
        i, hits = carry
        tgt = jax.random.randint(jax.random.fold_in(k_t, i), (chunk,), 0, n_total) - offset
        ok = (i * chunk + jnp.arange(chunk) < m) & (tgt >= 0) & (tgt < n_local)
        return i + 1, hits.at[jnp.where(ok, tgt, n_local)].add(1, mode="drop")

    _, hits = jax.lax.while_loop(
        lambda c: c[0] * chunk < m, body, (jnp.int32(0), jnp.zeros(n_local, jnp.int32))
    )
    incoming = jnp.where(hits > 0, hits * jnp.log1p(-jnp.minimum(rel_sus, 1.0)), 0.0)
    return own + jnp.where(rel_sus >= 1.0, jnp.where(hits > 0, -jnp.inf, 0.0), incoming)


def log_escape(
    key: PRNGKeyArray,
    layers: tuple[Layer, ...],
    infectious: Float[Array, " n"],
    rel_sus: Float[Array, " n"],
    dt: float,
    *,
    axis_name: str | None = None,
) -> Float[Array, " n"]:
    """Sum of the layers' log escape probabilities for this device's agents."""
    n_local = infectious.shape[0]
    n_total = n_local if axis_name is None else n_local * jax.lax.axis_size(axis_name)
    total = jnp.zeros(n_local, jnp.float32)
    for i, layer in enumerate(layers):
        p = contact_prob(layer.beta, dt)
        net = layer.network
        if isinstance(net, WellMixed):
            rate = jnp.asarray(layer.beta, jnp.float32) * dt
            total = total - rate * rel_sus * _total(infectious, axis_name) / n_total
        elif isinstance(net, RandomNet):
            total = total + random_net_log_escape(
                jax.random.fold_in(key, i),
                net,
                p,
                infectious,
                rel_sus,
                n_total=n_total,
                axis_name=axis_name,
            )
        else:
            # sharded: this device holds a slice of the edges and scatters to every agent
            full = edge_log_escape(
                net, p, _gather(infectious, axis_name), _gather(rel_sus, axis_name)
            )
            if axis_name is not None:
                full = jax.lax.psum_scatter(full, axis_name, tiled=True)
            total = total + full
    return total
