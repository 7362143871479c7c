"""``lstm_sequence`` (time-major, hand-written backward) against ``run_cell`` (scan + autodiff).

Same operations in another layout, so values and gradients agree to float32 rounding: 1e-5
(relative to the largest gradient for gradients).
"""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from twinjax.twins.cells import LSTMCarry, dense, dense_init, lstm_init, run_cell
from twinjax.twins.sequence import lstm_sequence

T, W, F, H = 11, 3, 5, 8  # steps, windows (batch), inputs, hidden


def _reference(p, xs, carry):
    """``run_cell`` on each window of ``xs [T, W, F]``, stacked back time-major."""
    cell = lambda x, h, c: run_cell("lstm", p, x, LSTMCarry(h, c))
    last, hs = jax.vmap(cell, in_axes=(1, 0, 0))(xs, carry.h, carry.c)
    return last, jnp.swapaxes(hs, 0, 1)


def _loss(fn, p, xs, carry):
    """A loss that reads every output (hidden states and the final carry) non-linearly."""
    last, hs = fn(p, xs, carry)
    return jnp.sum(jnp.sin(3.0 * hs)) + jnp.sum(last.h**2) + jnp.sum(jnp.cos(last.c))


def _close(a, b, scale=1.0):
    jax.tree.map(lambda u, v: np.testing.assert_allclose(u, v, atol=1e-5 * scale, rtol=1e-5), a, b)


@pytest.fixture(scope="module")
def inputs():
    k1, k2, k3, k4 = jax.random.split(jax.random.key(0), 4)
    p = lstm_init(k1, F, H)
    p = p._replace(b=0.3 * jax.random.normal(k4, p.b.shape))  # a bias that is not all 0/1
    xs = jax.random.normal(k2, (T, W, F))
    carry = LSTMCarry(*(0.5 * jax.random.normal(k, (W, H)) for k in jax.random.split(k3)))
    return p, xs, carry


def test_values_equal_run_cell_per_window(inputs):
    p, xs, carry = inputs
    (last, hs), (ref_last, ref_hs) = lstm_sequence(p, xs, carry), _reference(p, xs, carry)
    assert hs.shape == (T, W, H)
    _close((last, hs), (ref_last, ref_hs))
    zero_start = lstm_sequence(p, xs)[1]  # default carry: zeros
    _close(zero_start, _reference(p, xs, jax.tree.map(jnp.zeros_like, carry))[1])
    assert not np.allclose(zero_start, hs, atol=1e-3)  # the initial carry matters


def test_gradients_equal_autodiff_of_run_cell(inputs):
    p, xs, carry = inputs
    argnums = (0, 1, 2)  # params, inputs and initial carry
    g = jax.grad(lambda *a: _loss(lstm_sequence, *a), argnums)(p, xs, carry)
    g_ref = jax.grad(lambda *a: _loss(_reference, *a), argnums)(p, xs, carry)
    scale = max(float(jnp.abs(v).max()) for v in jax.tree.leaves(g_ref))
    assert scale > 0.1
    _close(g, g_ref, scale)


@pytest.mark.integration
def test_cohort_vmap_equals_per_individual_calls(inputs):
    """Per-individual parameters, vmapped over a cohort of 3: each equals its own call."""
    _, xs, carry = inputs
    n = 3
    ps = jax.vmap(lambda k: lstm_init(k, F, H))(jax.random.split(jax.random.key(7), n))
    cohort_xs = jnp.stack([xs, -xs, 2 * xs])
    loss = lambda p, x: _loss(lstm_sequence, p, x, carry)
    losses, grads = jax.jit(jax.vmap(jax.value_and_grad(loss)))(ps, cohort_xs)
    take = lambda tree, i: jax.tree.map(lambda a: a[i], tree)
    ref = lambda p, x: jax.value_and_grad(lambda p: _loss(_reference, p, x, carry))(p)
    for i in range(n):
        ref_loss, ref_grad = ref(take(ps, i), cohort_xs[i])
        # a sum of T*W*H + 2*W*H terms of size <= 1 with float32 rounding (~1e-7) in each
        np.testing.assert_allclose(losses[i], ref_loss, atol=1e-6 * (T + 2) * W * H)
        _close(take(grads, i), ref_grad, float(jnp.abs(ref_grad.wh).max()))


def test_windows_vmapped_outside_share_the_weights(inputs):
    """As the app calls it: one sequence [T, F] per call, vmapped over windows with the weights
    unbatched; the weight gradient is the sum over windows, as for the batched call."""
    p, xs, carry = inputs
    one = lambda p, x, h, c: lstm_sequence(p, x, LSTMCarry(h, c))[1]
    loss = lambda p: jnp.sum(
        jnp.sin(jax.vmap(one, in_axes=(None, 1, 0, 0), out_axes=1)(p, xs, *carry))
    )
    batched = lambda p: jnp.sum(jnp.sin(lstm_sequence(p, xs, carry)[1]))
    np.testing.assert_allclose(loss(p), batched(p), rtol=1e-5)
    g, g_ref = jax.grad(loss)(p), jax.grad(batched)(p)
    _close(g, g_ref, float(jnp.abs(g_ref.wh).max()))


def test_bad_input_shape_is_refused(inputs):
    p, xs, _ = inputs
    with pytest.raises(ValueError, match="d_in=5"):
        lstm_sequence(p, xs[..., :4])
    with pytest.raises((ValueError, TypeError)):  # TypeError: jaxtyping's hook, in tests
        lstm_sequence(p, xs[0, 0])


@pytest.mark.integration
def test_readout_inside_the_loop_equals_a_head_on_the_hidden_states(inputs):
    """``readout=Dense`` applied per step inside the loop (hidden states never stacked) equals
    the same layer on the returned hidden states, values and gradients (its own included)."""
    p, xs, carry = inputs
    head = dense_init(jax.random.key(5), H, 2)._replace(b=jnp.array([0.1, -0.2]))

    def loss(p, head, inside):
        if inside:
            last, out = lstm_sequence(p, xs, carry, readout=head)
        else:
            last, hs = lstm_sequence(p, xs, carry)
            out = dense(head, hs)
        return jnp.sum(jnp.sin(3.0 * out)) + jnp.sum(last.c**2)

    np.testing.assert_allclose(loss(p, head, True), loss(p, head, False), atol=1e-5)
    g_in, g_out = (jax.grad(loss, (0, 1))(p, head, inside) for inside in (True, False))
    scale = max(float(jnp.abs(v).max()) for v in jax.tree.leaves(g_out))
    _close(g_in, g_out, scale)
    assert float(jnp.abs(g_out[1].w).max()) > 1e-2  # the head's gradient is compared too


def test_bfloat16_residuals_same_values_approximate_gradients(inputs):
    """``residuals="bfloat16"``: the forward pass is untouched (bit-equal outputs); the backward
    pass recomputes the gates from carries rounded to 8 significant bits, so the gradient
    differs from float32's by about that rounding (2^-9 relative) times the sequence's
    amplification: bounded here by 1% of the largest gradient element (measured 1e-4-5e-4 at
    init on the bench workload, up to 1.7% after 300 Adam steps, cosine > 0.9998)."""
    p, xs, carry = inputs
    head = dense_init(jax.random.key(5), H, 2)

    def loss(p, head, residuals):
        last, out = lstm_sequence(p, xs, carry, readout=head, residuals=residuals)
        return jnp.sum(jnp.sin(3.0 * out)) + jnp.sum(last.c**2)

    assert loss(p, head, "bfloat16") == loss(p, head, "float32")
    g16, g32 = (jax.grad(loss, (0, 1))(p, head, r) for r in ("bfloat16", "float32"))
    scale = max(float(jnp.abs(v).max()) for v in jax.tree.leaves(g32))
    err = max(
        float(jnp.abs(a - b).max())
        for a, b in zip(jax.tree.leaves(g16), jax.tree.leaves(g32), strict=True)
    )
    assert 1e-7 * scale < err < 1e-2 * scale, err / scale  # rounded (not exact), and close
    flat = lambda g: jnp.concatenate([v.ravel() for v in jax.tree.leaves(g)])
    cos = jnp.dot(flat(g16), flat(g32)) / jnp.linalg.norm(flat(g16)) / jnp.linalg.norm(flat(g32))
    assert cos > 0.9999
    with pytest.raises((ValueError, TypeError), match="residuals"):  # TypeError: jaxtyping's hook
        lstm_sequence(p, xs, residuals="float16")
    with pytest.raises(ValueError, match="float32"):
        lstm_sequence(p, xs, kernel="pallas", residuals="bfloat16", interpret=True)
