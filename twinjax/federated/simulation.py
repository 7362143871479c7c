"""The simulated environment of a round: stragglers, dropouts and Byzantine clients.

Stragglers and dropouts are drawn for the round's whole cohort at once (exactly
``round(straggler_fraction * sampled)`` stragglers, :func:`~twinjax.federated.sampling.assign_work`),
so they are options of the round; Byzantine clients are a wrapper around the client update.
"""

import math
from dataclasses import dataclass
from typing import Literal

import jax
import jax.numpy as jnp

from twinjax.federated.clients.base import ClientOutput, ClientUpdate

ATTACKS = ("sign_flip", "scale", "nan")


@dataclass(frozen=True)
class Byzantine:
    """Simulated attackers: clients with id < ``floor(fraction * num_clients)`` corrupt their
    update: ``sign_flip`` sends ``-scale * u``, ``scale`` sends ``scale * u``, ``nan`` NaN."""

    fraction: float = 0.0
    attack: Literal["sign_flip", "scale", "nan"] = "sign_flip"
    scale: float = 10.0


@dataclass(frozen=True)
class Simulation:
    """What happens to the sampled clients of a round.

    ``straggler_fraction`` of them are stragglers (dropped or partial, as the algorithm's
    ``drop_stragglers`` says); each independently drops out with ``dropout_prob``; Byzantine
    attackers (:class:`Byzantine`) corrupt their updates.
    """

    straggler_fraction: float = 0.0
    dropout_prob: float = 0.0
    byzantine: Byzantine = Byzantine()


def byzantine_clients(
    client: ClientUpdate, *, attackers: int, attack: str = "sign_flip", scale: float = 10.0
) -> ClientUpdate:
    """``client`` with the clients of id < ``attackers`` sending a corrupted update.

    Args:
        client: the honest client update (its state is kept honest).
        attackers: the number of attacking clients (the lowest ids).
        attack: ``"sign_flip"`` (``-scale * u``), ``"scale"`` (``scale * u``) or ``"nan"``.
        scale: the attack's factor.

    Returns:
        A :class:`ClientUpdate` with ``client``'s ``init``.
    """
    if attack not in ATTACKS:
        raise ValueError(f"unknown attack {attack!r}; expected one of {ATTACKS}")

    def corrupt(u):
        if attack == "sign_flip":
            return -scale * u
        if attack == "scale":
            return scale * u
        return jnp.full_like(u, jnp.nan)

    def update(params, shared, state, task, key):
        out = client.update(params, shared, state, task, key)
        bad = task.id < jnp.float32(attackers)
        delta = jax.tree.map(lambda u: jnp.where(bad, corrupt(u), u), out.delta)
        return ClientOutput(delta, out.steps, out.state)

    return ClientUpdate(init=client.init, update=update)


def num_attackers(byzantine: Byzantine, num_clients: int) -> int:
    """``floor(fraction * num_clients)``: the attackers among ``num_clients`` clients."""
    return math.floor(byzantine.fraction * num_clients)
