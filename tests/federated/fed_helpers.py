"""Shared helpers of the federated tests (no shared random state: each test seeds its own)."""

import jax.numpy as jnp
import numpy as np

from twinjax import federated as fl


def updates(seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Nine 7-dim updates and an accepted mask with rows 2 and 6 rejected."""
    u = np.random.default_rng(seed).normal(size=(9, 7)).astype(np.float32)
    return u, np.array([1, 1, 0, 1, 1, 1, 0, 1, 1], bool)


def aggregate(aggregator: fl.Aggregator, u, weight, accepted, *, key=None, **cohort):
    """The aggregate of one round from a fresh aggregator state."""
    c = fl.RoundClients(weight=jnp.asarray(weight), accepted=jnp.asarray(accepted), **cohort)
    return aggregator.aggregate(aggregator.init(), jnp.asarray(u), c, key)[0]
