"""SCAFFOLD clients (Karimireddy et al., ICML 2020): control variates, option II."""

import jax
import jax.numpy as jnp

from twinjax.federated.clients.base import ClientOutput, ClientUpdate
from twinjax.federated.local import LossFn, local_sgd


def scaffold_update(
    loss_fn: LossFn, *, learning_rate: float, batch_size: int, epochs: int
) -> ClientUpdate:
    """Local SGD corrected by ``c - c_i``; afterwards ``c_i+ = c_i - c + (x - y) / (K lr)``.

    The client keeps ``c_i`` (state ``control``); the server's ``c`` (shared ``control``) is the
    population mean of the ``c_i``, updated by the round from the clients' changes.

    Args:
        loss_fn: ``loss(params, batch, sample_mask) -> mean loss``.
        learning_rate: local SGD step size.
        batch_size: local minibatch size.
        epochs: the most local epochs the server may assign.

    Returns:
        A :class:`ClientUpdate` with a ``control`` variate per client and a shared one.
    """

    def init(params):
        zeros = jax.tree.map(jnp.zeros_like, params)
        return {"control": zeros}, {"control": zeros}

    def update(params, shared, state, task, key):
        k_train, _ = jax.random.split(key)
        correction = jax.tree.map(jnp.subtract, shared["control"], state["control"])
        res = local_sgd(
            loss_fn, params, task.samples, task.offset, task.count, task.epochs, k_train,
            anchor=params, correction=correction, learning_rate=learning_rate,
            batch_size=batch_size, max_epochs=epochs,
        )  # fmt: skip
        delta = jax.tree.map(jnp.subtract, res.params, params)
        steps = res.steps
        denom = jnp.maximum(steps, 1) * learning_rate
        control = jax.tree.map(
            lambda ci, c, d: jnp.where(steps > 0, ci - c - d / denom, ci),
            state["control"], shared["control"], delta,
        )  # fmt: skip
        return ClientOutput(delta, steps, {**state, "control": control})

    return ClientUpdate(init=init, update=update)
