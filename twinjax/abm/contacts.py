"""Force of infection from contact layers, as a per-agent escape probability.

A susceptible agent ``v`` escapes infection in a step with probability ``escape[v]``, the product
of the layers' escape probabilities, so layers combine as independent routes (as in starsim, where
duplicate infections across networks are dropped). ``infectious`` is the per-agent infectious
weight (``is_infectious * rel_trans``) and ``rel_sus`` the susceptibility multiplier.

Per-contact transmission rates ``beta`` are per unit time; the per-step probability on one contact
is ``1 - exp(-beta * dt)`` (starsim's ``ss.perday(beta).to_prob(dt)``).

In a sharded run (``axis_name`` set, inside ``jax.shard_map``) the arrays hold this device's
agents; population totals are ``psum``-ed and the infectious vector is all-gathered for edges.
"""

from dataclasses import dataclass
from typing import NamedTuple

import jax
import jax.numpy as jnp
from jaxtyping import Array, Float, PRNGKeyArray

from twinjax.abm.networks import EdgeList, RandomNet
from twinjax.abm.rng import hash_integers


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


def _int_pow(base, exponent, bits: int = 6):
    """``base ** exponent`` for integer exponents (clipped to ``2**bits - 1``) by repeated squaring."""
    e = jnp.minimum(exponent, (1 << bits) - 1)
    out = jnp.ones_like(base)
    for j in range(bits):
        out = jnp.where((e >> j) & 1, out * base, out)
        base = base * base
    return out


def random_net_escape(
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
    """Escape probability through starsim's dynamic RandomNet, sampled without edges.

    Each agent owns ``k = n_contacts / 2`` edges per step to uniform partners. For a susceptible
    ``v``: its own ``k`` edges reach an infectious agent independently with probability
    ``I / N``; the infectious agents' ``k I`` edges transmit w.p. ``p`` each, and the ``M ~
    Binomial(k I, p)`` successful ones land on uniform targets (drawn in chunks, so the cost grows
    with ``M``, not with ``N k``), each accepted w.p. ``rel_sus``. Both parts are exactly the
    edge-level process when infectious weights are 0/1 (other rel_trans values are not supported
    on this layer) and an agent is hit fewer than 64 times in a step.
    """
    k = net.n_contacts // 2
    n_local = infectious.shape[0]
    n_inf = _total(infectious, axis_name)
    own = (1.0 - p * rel_sus * n_inf / n_total) ** k
    k_m, k_t = jax.random.split(key)
    m = jax.random.binomial(k_m, k * n_inf, p).astype(jnp.int32)
    offset = 0 if axis_name is None else jax.lax.axis_index(axis_name) * n_local

    def body(carry):
        i, hits = carry
        tgt = hash_integers(jax.random.fold_in(k_t, i), chunk, n_total) - offset
        ok = (i * chunk + jnp.arange(chunk) < m) & (tgt >= 0) & (tgt < n_local)
        return i + 1, hits.at[jnp.where(ok, tgt, n_local)].add(1, mode="drop")

    _, hits = jax.lax.while_loop(
        lambda c: c[0] * chunk < m, body, (jnp.int32(0), jnp.zeros(n_local, jnp.int32))
    )
    return own * _int_pow(1.0 - jnp.minimum(rel_sus, 1.0), hits)


def escape_prob(
    key: PRNGKeyArray,
    layers: tuple[Layer, ...],
    infectious: Float[Array, " n"],
    rel_sus: Float[Array, " n"],
    dt: float,
    *,
    axis_name: str | None = None,
) -> Float[Array, " n"]:
    """Probability that each of this device's agents escapes infection in the step (all layers).

    Args:
        key: PRNG key (used by RandomNet layers only).
        layers: the contact layers.
        infectious: per-agent infectious weight (``is_infectious * rel_trans``).
        rel_sus: per-agent susceptibility weight (0 for agents that are not susceptible).
        dt: step length, in the unit of the layers' rates.
        axis_name: the agents' mesh axis inside ``jax.shard_map`` (None: not sharded).

    Returns:
        The escape probability of each (local) agent.
    """
    n_local = infectious.shape[0]
    n_total = n_local if axis_name is None else n_local * jax.lax.axis_size(axis_name)
    log_esc = None
    esc = jnp.ones(n_local, jnp.float32)
    for i, layer in enumerate(layers):
        p = contact_prob(layer.beta, dt)
        net = layer.network
        if isinstance(net, WellMixed):
            rate = jnp.asarray(layer.beta, jnp.float32) * dt
            term = -rate * rel_sus * _total(infectious, axis_name) / n_total
        elif isinstance(net, RandomNet):
            key_i = jax.random.fold_in(key, i)
            kw = dict(n_total=n_total, axis_name=axis_name)
            esc = esc * random_net_escape(key_i, net, p, infectious, rel_sus, **kw)
            continue
        else:
            # sharded: this device holds a slice of the edges and scatters to every agent
            term = edge_log_escape(
                net, p, _gather(infectious, axis_name), _gather(rel_sus, axis_name)
            )
            if axis_name is not None:
                term = jax.lax.psum_scatter(term, axis_name, tiled=True)
        log_esc = term if log_esc is None else log_esc + term
    return esc if log_esc is None else esc * jnp.exp(log_esc)
