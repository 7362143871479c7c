"""The LSTM's hand-written backward pass over a whole sequence, and the gate arithmetic it
shares with the forward scans: :mod:`twinjax.twins.sequence` (XLA) and :mod:`twinjax.twins.fused`
(Pallas) both differentiate through :func:`lstm_backward` (``jax.custom_vjp``); why it is
hand-written is in :mod:`twinjax.twins.sequence`'s docstring."""

import jax
import jax.numpy as jnp
from jax import lax
from jaxtyping import Array

from twinjax.twins.cells import Dense, LSTMCarry, RecurrentParams


def gate_activations(z: Array) -> Array:
    """``[sigmoid(i), sigmoid(f), tanh(g), sigmoid(o)]`` in one elementwise pass over 4 H.

    ``tanh(g) = 2 sigmoid(2 g) - 1``: one transcendental kind, so XLA emits a single fusion
    (equal to ``jnp.tanh`` to float32 rounding, ~1e-7).
    """
    hidden = z.shape[-1] // 4
    col = jnp.arange(4 * hidden)
    is_g = (col >= 2 * hidden) & (col < 3 * hidden)
    a = jax.nn.sigmoid(jnp.where(is_g, 2.0 * z, z))
    return jnp.where(is_g, 2.0 * a - 1.0, a)


def split_gates(act: Array):
    return jnp.split(act, 4, axis=-1)


def pack_bfloat16(a: Array) -> Array:
    """``a`` rounded to bfloat16, held as its bits (``uint16``): XLA's CPU backend has no native
    bfloat16 stores, and widened each step's write into the stacked residuals to a float32 copy
    of the whole stack (more memory than float32, and slower)."""
    return lax.bitcast_convert_type(a.astype(jnp.bfloat16), jnp.uint16)


def unpack(a: Array, dtype) -> Array:
    """The inverse of :func:`pack_bfloat16`, widened to ``dtype``."""
    if a.dtype == jnp.uint16:
        a = lax.bitcast_convert_type(a, jnp.bfloat16)
    return a.astype(dtype)


def lstm_backward(p: RecurrentParams, xs, prev, d_last: LSTMCarry, d_outs, readout):
    """Gradients of :func:`twinjax.twins.sequence.lstm_sequence` (batch flattened: ``xs [T, B, F]``) from the carries
    that entered each step, ``prev = (h [T, B, H], c [T, B, H])`` (in any float dtype: they
    are cast to ``xs``'s, and all arithmetic and accumulation is in that dtype).

    The backward pass of ``twins.sequence``'s scan and of the fused (Pallas) forward kernel
    in ``twins.fused``.
    Returns ``(d params, d xs, d carry, d readout)``.
    """
    hidden = p.wh.shape[0]
    col = jnp.arange(4 * hidden)
    is_g = (col >= 2 * hidden) & (col < 3 * hidden)
    # Transposed copies, made explicitly (optimization_barrier): folded into a dot, a
    # transposed operand made XLA's batched GEMM on the CPU slower. Per step for h and
    # x (small, in cache) rather than stored transposed for the whole sequence.
    wh_t = lax.optimization_barrier(p.wh.T)

    def _step(carry, inputs):
        dh, dc, dwh, dwx, db, dro = carry
        x, (h, c), d_out = inputs
        h, c = unpack(h, x.dtype), unpack(c, x.dtype)
        x_t, h_t = lax.optimization_barrier((x.T, h.T))
        act = gate_activations(x @ p.wx + h @ p.wh + p.b)  # recomputed, not stored
        i, f, g, o = split_gates(act)
        tc = jnp.tanh(f * c + i * g)
        if readout is None:
            dh = dh + d_out
        else:
            dh = dh + d_out @ readout.w.T
            h_next = o * tc
            dro = Dense(b=dro.b + jnp.sum(d_out, 0), w=dro.w + h_next.T @ d_out)
        dc = dc + dh * o * (1.0 - tc * tc)
        upstream = jnp.concatenate([dc * g, dc * c, dc * i, dh * tc], axis=-1)
        dz = upstream * jnp.where(is_g, 1.0 - act * act, act * (1.0 - act))
        carry = (dz @ wh_t, dc * f, dwh + h_t @ dz, dwx + x_t @ dz, db + jnp.sum(dz, 0), dro)
        return carry, dz @ p.wx.T

    zeros = jax.tree.map(jnp.zeros_like, (p.wh, p.wx, p.b, readout))
    init = (d_last.h, d_last.c, *zeros)
    inputs = (xs, prev, d_outs)
    (dh, dc, dwh, dwx, db, dro), dxs = lax.scan(_step, init, inputs, reverse=True)
    return RecurrentParams(b=db, wh=dwh, wx=dwx), dxs, LSTMCarry(dh, dc), dro
