"""Local SGD on one client: a fixed number of epochs as masked minibatch steps.

A client runs ``epochs * ceil(count / batch_size)`` steps inside a ``lax.while_loop``; under
``vmap`` the loop stops when the busiest client of the batch is done, so no client is padded to
the largest dataset of the population and the data is never copied per client.

Each epoch visits the client's samples in the order ``(a * position + c) mod count`` with a
random multiplier ``a = p mod count`` (``p`` a prime above any client size, hence
``a`` coprime to ``count``) and a random shift ``c``: a permutation of the
client's samples that costs O(batch) per step instead of a sort of the data every epoch.

The loop body runs ``unroll`` consecutive steps, the ones past the client's last step leaving the
parameters unchanged: one batched index computation and one gather serve ``unroll`` steps, and
the per-iteration cost of the loop is paid ``unroll`` times less often. Each step still sees
exactly the batch and parameters it would see one step per iteration.
"""

from collections.abc import Callable
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, Float, Int, PRNGKeyArray

from twinjax.federated.data import MAX_CLIENT_SAMPLES

Params = Any
LossFn = Callable[[Params, Any, Array], Array]  # (params, batch, sample mask) -> mean loss


class LocalResult(NamedTuple):
    params: Params
    steps: Int[Array, ""]


def _primes_above(low: int, n: int) -> np.ndarray:
    out, k = [], low + 1
    while len(out) < n:
        if all(k % d for d in range(2, int(k**0.5) + 1)):
            out.append(k)
        k += 1
    return np.array(out, dtype=np.int32)


# primes above the largest client size: ``p mod count`` is always coprime to ``count``
_PRIMES = _primes_above(MAX_CLIENT_SAMPLES, 256)


def epoch_orders(
    key: PRNGKeyArray, count: Int[Array, ""] | int, epochs: int
) -> tuple[Int[Array, " epochs"], Int[Array, " epochs"]]:
    """Per-epoch (multiplier, shift) of the affine shuffle of ``count`` samples."""
    k_a, k_c = jax.random.split(key)
    a = jnp.asarray(_PRIMES)[jax.random.randint(k_a, (epochs,), 0, len(_PRIMES))] % count
    c = jax.random.randint(k_c, (epochs,), 0, jnp.maximum(count, 1))
    return a, c


def local_sgd(
    loss_fn: LossFn,
    params: Params,
    samples: Any,
    offset: Int[Array, ""],
    count: Int[Array, ""],
    epochs: Int[Array, ""],
    key: PRNGKeyArray,
    *,
    learning_rate: float,
    batch_size: int,
    max_epochs: int,
    anchor: Params | None = None,
    mu: float = 0.0,
    correction: Params | None = None,
    trainable: Params | None = None,
    unroll: int = 4,
) -> LocalResult:
    """Runs ``epochs`` (traced, at most ``max_epochs``) epochs of minibatch SGD on one client.

    The gradient is that of ``loss_fn`` plus ``mu * (params - anchor)`` (FedProx / Ditto) plus
    ``correction`` (SCAFFOLD's ``c - c_i``); leaves where ``trainable`` is False stay fixed.
    ``unroll`` steps run per loop iteration (a speed setting; the result does not depend on it).
    """
    count = jnp.maximum(count, 1)
    batches = (count + batch_size - 1) // batch_size
    steps = jnp.minimum(epochs, max_epochs) * batches
    mult, shift = epoch_orders(key, count, max_epochs)
    grad_fn = jax.grad(loss_fn)

    def _sgd(p, batch, valid, live):
        g = grad_fn(p, batch, valid)
        if mu:
            g = jax.tree.map(lambda g, p, a: g + mu * (p - a), g, p, anchor)
        if correction is not None:
            g = jax.tree.map(jnp.add, g, correction)
        if trainable is not None:
            g = jax.tree.map(lambda g, t: g * t, g, trainable)
        return jax.tree.map(lambda p, g: jnp.where(live, p - learning_rate * g, p), p, g)

    def _step(carry):
        i, p = carry
        step = i + jnp.arange(unroll)
        epoch = jnp.minimum(step // batches, max_epochs - 1)
        pos = (step % batches)[:, None] * batch_size + jnp.arange(batch_size)
        idx = offset + (mult[epoch][:, None] * (pos % count) + shift[epoch][:, None]) % count
        batch = jax.tree.map(lambda a: a[idx], samples)  # (unroll, batch_size, ...)
        for u in range(unroll):
            p = _sgd(p, jax.tree.map(lambda a, u=u: a[u], batch), pos[u] < count, step[u] < steps)
        return i + unroll, p

    _, params = jax.lax.while_loop(lambda c: c[0] < steps, _step, (jnp.int32(0), params))
    return LocalResult(params=params, steps=steps)


def num_local_steps(
    count: Int[Array, " clients"], epochs: Int[Array, " clients"], batch_size: int
) -> Int[Array, " clients"]:
    return epochs * ((count + batch_size - 1) // batch_size)


def sq_norm(tree: Params) -> Float[Array, ""]:
    return sum(jnp.sum(jnp.square(x)) for x in jax.tree.leaves(tree))
