"""A fused LSTM forward kernel in Pallas (for the GPU), checked against ``lstm_sequence``.

One kernel instance runs one individual's whole sequence: its recurrent weights are loaded
once (registers / shared memory on a GPU) and the time loop runs inside the kernel, so each step
costs no kernel launch and no round trip of the carry through global memory. Under ``jax.vmap``
over individuals, ``pallas_call`` gets one grid index per individual.

The input projection of all steps is one GEMM before the kernel (``xs @ wx + b``); inside it,
only ``h @ wh`` and the gates remain. The kernel writes ``h`` and ``c`` of every step, which the
backward pass needs: there is no Pallas backward kernel; gradients come from
``lstm_gradient.lstm_backward`` (pure JAX), through ``jax.custom_vjp``.

The tests run the kernel on the CPU in Pallas interpret mode against the pure-JAX
``lstm_sequence`` (values and gradients); ``scripts/gpu_check.sh`` compiles and times it on a
GPU (``bench_twins --layout sequence --kernel pallas``).
"""

from functools import partial

import jax
import jax.numpy as jnp
from jax import lax
from jax.experimental import pallas as pl
from jaxtyping import Array, Float

from twinjax.twins.cells import LSTMCarry, RecurrentParams
from twinjax.twins.lstm_gradient import lstm_backward


def _sigmoid(z):
    return 1.0 / (1.0 + jnp.exp(-z))


def _kernel(zx_ref, wh_ref, h0_ref, c0_ref, hs_ref, cs_ref, h_ref, c_ref):
    """zx [T, B, 4H], wh [H, 4H], h0/c0 [B, H] -> hs/cs [T, B, H], final h/c [B, H]."""
    hidden = h0_ref.shape[-1]
    block = lambda k: pl.ds(k * hidden, hidden)  # gate k's columns (i, f, g, o)
    w = [wh_ref[:, block(k)] for k in range(4)]  # loaded once for all steps

    def _step(t, carry):
        h, c = carry
        dot = partial(jnp.dot, precision=lax.Precision.HIGHEST)  # fp32, not TF32, on a GPU
        z = [zx_ref[t, :, block(k)] + dot(h, w[k]) for k in range(4)]
        c = _sigmoid(z[1]) * c + _sigmoid(z[0]) * jnp.tanh(z[2])
        h = _sigmoid(z[3]) * jnp.tanh(c)
        hs_ref[t] = h
        cs_ref[t] = c
        return h, c

    h, c = lax.fori_loop(0, zx_ref.shape[0], _step, (h0_ref[...], c0_ref[...]))
    h_ref[...] = h
    c_ref[...] = c


def _forward(p: RecurrentParams, xs, carry: LSTMCarry, interpret: bool):
    zx = xs @ p.wx + p.b  # [T, B, 4H]: the input projection of every step, one GEMM
    t, b, hidden = xs.shape[0], xs.shape[1], p.wh.shape[0]
    seq = jax.ShapeDtypeStruct((t, b, hidden), xs.dtype)
    last = jax.ShapeDtypeStruct((b, hidden), xs.dtype)
    hs, cs, h, c = pl.pallas_call(
        _kernel, out_shape=(seq, seq, last, last), interpret=interpret, name="lstm_forward"
    )(zx, p.wh, carry.h, carry.c)
    return LSTMCarry(h, c), hs, cs


@partial(jax.custom_vjp, nondiff_argnums=(3,))
def _lstm(p, xs, carry, interpret):
    last, hs, _ = _forward(p, xs, carry, interpret)
    return last, hs


def _lstm_fwd(p, xs, carry, interpret):
    last, hs, cs = _forward(p, xs, carry, interpret)
    return (last, hs), (p, xs, carry, hs, cs)


def _lstm_bwd(interpret, residuals, cotangents):
    p, xs, carry, hs, cs = residuals
    d_last, dhs = cotangents
    h_prev = jnp.concatenate([carry.h[None], hs[:-1]])  # the carries entering each step
    c_prev = jnp.concatenate([carry.c[None], cs[:-1]])
    prev = (h_prev, c_prev)
    dp, dxs, dcarry, _ = lstm_backward(p, xs, prev, LSTMCarry(*d_last), dhs, None)
    return dp, dxs, dcarry


_lstm.defvjp(_lstm_fwd, _lstm_bwd)


def lstm_pallas(
    p: RecurrentParams,
    xs: Float[Array, "time batch d_in"],
    carry: LSTMCarry,
    *,
    interpret: bool = False,
) -> tuple[LSTMCarry, Float[Array, "time batch hidden"]]:
    """``lstm_sequence`` for one batch axis with the forward pass in the Pallas kernel.

    ``interpret=True`` runs the kernel in Pallas' interpreter (any backend, slow: for tests).
    On a GPU (Triton), ``batch`` and ``hidden`` should be at least 16 (the kernel's dots).
    Prefer ``lstm_sequence(..., kernel="pallas")``, which takes any batch axes.
    """
    return _lstm(p, xs, carry, interpret)
