"""Local SGD (unrolled, vmapped over clients of different sizes) equals a plain numpy loop."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from twinjax import federated as fl
from twinjax.federated.local import epoch_orders

TOL = 1e-5  # float32 against float64 numpy, ~100 steps of lr 0.1
LR, BATCH, MAX_EPOCHS = 0.1, 4, 3


def _numpy_sgd(x, y, offset, count, epochs, key, mu=0.0):
    """One SGD step per minibatch of the affine shuffle, in float64 numpy."""
    mult, shift = (np.asarray(a, np.int64) for a in epoch_orders(key, count, MAX_EPOCHS))
    w, b = np.zeros((x.shape[1], 3)), np.zeros(3)
    batches = -(-count // BATCH)
    for i in range(min(epochs, MAX_EPOCHS) * batches):
        e, pos = i // batches, (i % batches) * BATCH + np.arange(BATCH)
        valid = (pos < count).astype(np.float64)
        idx = offset + (mult[e] * (pos % count) + shift[e]) % count
        z = x[idx] @ w + b
        p = np.exp(z - z.max(axis=1, keepdims=True))
        p /= p.sum(axis=1, keepdims=True)
        p[np.arange(BATCH), y[idx]] -= 1.0
        p *= valid[:, None] / valid.sum()
        w -= LR * (x[idx].T @ p + mu * w)  # anchor = the zero initial parameters
        b -= LR * (p.sum(axis=0) + mu * b)
    return w, b


@pytest.mark.integration
@pytest.mark.parametrize("unroll,mu", [(1, 0.0), (4, 0.0), (3, 0.5)])
def test_local_sgd_equals_numpy_loop(unroll, mu):
    rng = np.random.default_rng(0)
    sizes = [13, 7, 22, 30]  # ragged last batches
    train = fl.from_client_lists(
        [(rng.normal(size=(n, 5)).astype(np.float32), rng.integers(0, 3, n).astype(np.int32))
         for n in sizes]
    )  # fmt: skip
    counts = np.asarray(train.count)
    epochs = jnp.array([3, 1, 2, 3], jnp.int32)  # steps not multiples of ``unroll``
    keys = jax.random.split(jax.random.key(5), 4)
    params = fl.logistic_init(5, 3)

    @jax.jit
    @jax.vmap
    def run(offset, count, e, key):
        return fl.local_sgd(
            fl.logistic_loss, params, train.samples, offset, count, e, key, learning_rate=LR,
            batch_size=BATCH, max_epochs=MAX_EPOCHS, anchor=params, mu=mu, unroll=unroll,
        )  # fmt: skip

    out = run(train.offset, train.count, epochs, keys)
    x, y = (np.asarray(a, np.float64) for a in train.samples)
    y = y.astype(np.int64)
    for k in range(4):
        w, b = _numpy_sgd(x, y, int(train.offset[k]), int(counts[k]), int(epochs[k]), keys[k], mu)
        np.testing.assert_allclose(np.asarray(out.params["w"][k]), w, rtol=TOL, atol=TOL)
        np.testing.assert_allclose(np.asarray(out.params["b"][k]), b, rtol=TOL, atol=TOL)
        assert int(out.steps[k]) == int(epochs[k]) * -(-int(counts[k]) // BATCH)
    assert float(jnp.abs(out.params["w"]).sum()) > 0
