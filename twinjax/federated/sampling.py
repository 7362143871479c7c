"""Which clients take part in a round, and how much local work each one does."""

import math
from typing import Literal

import jax
import jax.numpy as jnp
from jaxtyping import Array, Bool, Int, PRNGKeyArray

SAMPLING = ("uniform", "size", "poisson")


def poisson_slots(expected: int) -> int:
    """Static slot count for Poisson sampling: the mean plus six standard deviations."""
    return expected + int(math.ceil(6 * math.sqrt(expected))) + 1


def sample_clients(
    key: PRNGKeyArray,
    count: Int[Array, " clients"],
    clients_per_round: int,
    mode: Literal["uniform", "size", "poisson"],
) -> tuple[Int[Array, " slots"], Bool[Array, " slots"]]:
    """Sampled client ids (sorted by decreasing size, for load balance) and which slots are used.

    ``uniform``/``size``: ``clients_per_round`` distinct clients, uniformly or with probability
    proportional to sample count. ``poisson``: every client independently with probability
    ``clients_per_round / num_clients``, in :func:`poisson_slots` slots (overflow is dropped).
    """
    k = count.shape[0]
    if mode in ("uniform", "size"):
        p = None if mode == "uniform" else count / jnp.sum(count)
        ids = jax.random.choice(key, k, (clients_per_round,), replace=False, p=p)
        used = jnp.ones(clients_per_round, bool)
    elif mode == "poisson":
        u = jax.random.uniform(key, (k,))
        chosen = u < clients_per_round / k
        slots = min(poisson_slots(clients_per_round), k)
        ids = jnp.argsort(jnp.where(chosen, u, 2.0))[:slots]
        used = chosen[ids]
    else:
        raise ValueError(f"unknown sampling {mode!r}; expected one of {SAMPLING}")
    order = jnp.lexsort((-count[ids], ~used))
    return ids[order], used[order]


def assign_work(
    key: PRNGKeyArray,
    used: Bool[Array, " slots"],
    epochs: int,
    *,
    straggler_fraction: float = 0.0,
    drop_stragglers: bool = True,
    dropout_prob: float = 0.0,
) -> tuple[Int[Array, " slots"], Bool[Array, " slots"]]:
    """Local epochs per slot and whether the slot's update reaches the server.

    ``round(straggler_fraction * used)`` random clients are stragglers: with
    ``drop_stragglers`` (FedAvg) they send nothing, otherwise (FedProx) they run a uniform
    ``1 .. epochs-1`` epochs. Independently, each client drops out with ``dropout_prob``.
    """
    k_strag, k_epochs, k_drop = jax.random.split(key, 3)
    n_used = jnp.sum(used)
    n_strag = jnp.round(straggler_fraction * n_used).astype(jnp.int32)
    rank = jnp.argsort(jnp.argsort(jnp.where(used, jax.random.uniform(k_strag, used.shape), 2.0)))
    straggler = used & (rank < n_strag)
    partial = jax.random.randint(k_epochs, used.shape, 1, max(epochs, 2))
    live = used & ~(jax.random.uniform(k_drop, used.shape) < dropout_prob)
    if drop_stragglers:
        live = live & ~straggler
        work = jnp.full(used.shape, epochs)
    else:
        work = jnp.where(straggler, jnp.minimum(partial, epochs), epochs)
    return jnp.where(live, work, 0).astype(jnp.int32), live
