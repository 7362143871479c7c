"""Local SGD clients: FedAvg (``mu = 0``) and FedProx (Li et al., MLSys 2020, ``mu > 0``)."""

import jax
import jax.numpy as jnp

from twinjax.federated.clients.base import ClientOutput, ClientUpdate
from twinjax.federated.local import LossFn, local_sgd


def sgd_update(
    loss_fn: LossFn, *, learning_rate: float, batch_size: int, epochs: int, mu: float = 0.0
) -> ClientUpdate:
    """Minibatch SGD for the assigned epochs on ``loss_fn`` plus ``mu/2 ||w - w_t||^2``.

    Args:
        loss_fn: ``loss(params, batch, sample_mask) -> mean loss``.
        learning_rate: local SGD step size.
        batch_size: local minibatch size.
        epochs: the most local epochs the server may assign.
        mu: FedProx's proximal weight (0: FedAvg's plain SGD).

    Returns:
        A stateless :class:`ClientUpdate`.
    """

    def update(params, shared, state, task, key):
        k_train, _ = jax.random.split(key)  # the second stream is the personalized clients'
        res = local_sgd(
            loss_fn, params, task.samples, task.offset, task.count, task.epochs, k_train,
            anchor=params, mu=mu, learning_rate=learning_rate, batch_size=batch_size,
            max_epochs=epochs,
        )  # fmt: skip
        return ClientOutput(jax.tree.map(jnp.subtract, res.params, params), res.steps, state)

    return ClientUpdate(init=lambda params: ({}, {}), update=update)
