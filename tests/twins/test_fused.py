"""The Pallas LSTM forward kernel (``twins.fused``, interpret mode on the CPU) against the
pure-JAX reference ``lstm_sequence(kernel="xla")``: values, gradients, a vmapped cohort.

Both compute the same float32 operations in another order (the kernel's gates per block, the
reference's over all 4 H at once, tanh(g) written as 2 sigmoid(2g) - 1 there): 1e-5, relative
to the largest value for gradients. Shapes are tiny: interpret mode runs the kernel op by op.
"""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from twinjax.twins.cells import LSTMCarry, dense_init, lstm_init
from twinjax.twins.sequence import lstm_sequence

T, B, F, H = 6, 3, 4, 8


def _run(kernel, p, xs, carry=None):
    return lstm_sequence(p, xs, carry, kernel=kernel, interpret=True)


def _loss(kernel, p, xs, carry):
    last, hs = _run(kernel, p, xs, carry)
    return jnp.sum(jnp.sin(3.0 * hs)) + jnp.sum(last.h * last.c)


@pytest.fixture(scope="module")
def inputs():
    k1, k2, k3 = jax.random.split(jax.random.key(0), 3)
    p = lstm_init(k1, F, H)
    xs = jax.random.normal(k2, (T, 2, B, F))  # two batch axes: flattened for the kernel
    carry = LSTMCarry(*(0.5 * jax.random.normal(k, (2, B, H)) for k in jax.random.split(k3)))
    return p, xs, carry


def test_kernel_values_equal_the_reference(inputs):
    p, xs, carry = inputs
    (last, hs), (ref_last, ref_hs) = _run("pallas", p, xs, carry), _run("xla", p, xs, carry)
    assert hs.shape == (T, 2, B, H)
    jax.tree.map(
        lambda a, b: np.testing.assert_allclose(a, b, atol=1e-5), (last, hs), (ref_last, ref_hs)
    )


def test_kernel_gradients_equal_the_reference(inputs):
    p, xs, carry = inputs
    grads = [jax.grad(_loss, (1, 2, 3))(k, p, xs, carry) for k in ("pallas", "xla")]
    scale = max(float(jnp.abs(g).max()) for g in jax.tree.leaves(grads[1]))
    assert scale > 0.1
    jax.tree.map(lambda a, b: np.testing.assert_allclose(a, b, atol=1e-5 * scale), *grads)


def test_kernel_under_vmap_over_a_cohort(inputs):
    """Per-individual weights: pallas_call gets a grid over individuals; each equals its own
    reference call."""
    _, xs, _ = inputs
    ps = jax.vmap(lambda k: lstm_init(k, F, H))(jax.random.split(jax.random.key(1), 2))
    cohort_xs = jnp.stack([xs, 0.5 * xs])
    hs = jax.vmap(lambda p, x: _run("pallas", p, x)[1])(ps, cohort_xs)
    for i in range(2):
        ref = _run("xla", jax.tree.map(lambda a, i=i: a[i], ps), cohort_xs[i])[1]
        np.testing.assert_allclose(hs[i], ref, atol=1e-5)


def test_kernel_refuses_readout_and_unknown_kernels(inputs):
    p, xs, _ = inputs
    with pytest.raises(ValueError, match="readout"):
        lstm_sequence(p, xs, kernel="pallas", readout=dense_init(jax.random.key(0), H, 1))
    with pytest.raises((ValueError, TypeError)):  # TypeError: jaxtyping's hook, in tests
        lstm_sequence(p, xs, kernel="cuda")
