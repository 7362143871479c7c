"""An LSTM over a whole sequence, laid out for training speed (time-major, hand-written backward).

``cells.run_cell`` is the reference: one sequence ``[time, d_in]``, ``lax.scan`` over the cell's
step, autodiff for the gradient. :func:`lstm_sequence` computes the same function for a sequence
with any batch axes after time (``[time, windows, d_in]``: one individual's windows share its
weights). Under ``jax.vmap`` over individuals, each time step is then one batched GEMM
``[individuals] x ([windows, hidden] @ [hidden, 4 hidden])`` over contiguous memory.

Why a hand-written backward pass (``jax.custom_vjp``), measured on a 2-core CPU with the
``scripts/bench_twins.py`` workload (N=256, 16 windows x 96 steps, LSTM 32):

- autodiff of the per-window scan kept the input projection of every step ([N, windows, time,
  4 hidden], 200 MB) and moved it to time-major order and back (copies of 200 MB); fresh temporary
  buffers cost page faults on every step (~310,000 per step, 4.9 MB per individual);
- autodiff accumulates each weight gradient inside the loop in whatever layout the transpose
  rule yields; here the backward loop recomputes the gates from the stored carries (no stored
  gates: 4x less memory than keeping them), and the weight gradients are accumulated from each
  step's gate gradients without ever stacking them.

Residuals kept for the backward pass are the carries entering each step, ``h`` and ``c``
([time, *batch, hidden] each), 2/5 of what keeping the gates would take.
"""

import jax
import jax.numpy as jnp
from jax import lax
from jaxtyping import Array, Float

from twinjax.twins.cells import LSTMCarry, RecurrentParams


def _gates(z):
    i, f, g, o = jnp.split(z, 4, axis=-1)
    return jax.nn.sigmoid(i), jax.nn.sigmoid(f), jnp.tanh(g), jax.nn.sigmoid(o)


def _forward(p: RecurrentParams, xs, carry: LSTMCarry):
    """The scan; also returns the carry entering each step (the backward pass's residuals)."""

    def _step(carry, x_t):
        h, c = carry
        i, f, g, o = _gates(x_t @ p.wx + h @ p.wh + p.b)
        c_next = f * c + i * g
        h_next = o * jnp.tanh(c_next)
        return (h_next, c_next), (h_next, h, c)

    (h, c), (hs, h_prev, c_prev) = lax.scan(_step, (carry.h, carry.c), xs)
    return LSTMCarry(h, c), hs, h_prev, c_prev


@jax.custom_vjp
def _lstm(p: RecurrentParams, xs, carry: LSTMCarry):
    last, hs, _, _ = _forward(p, xs, carry)
    return last, hs


def _lstm_fwd(p, xs, carry):
    last, hs, h_prev, c_prev = _forward(p, xs, carry)
    return (last, hs), (p, xs, h_prev, c_prev)


def lstm_backward(p: RecurrentParams, xs, h_prev, c_prev, d_last: LSTMCarry, dhs):
    """Gradients of :func:`lstm_sequence` from the carries that entered each step.

    Also the backward pass of the fused (Pallas) forward kernel in ``twins.fused``.
    Returns ``(d params, d xs, d carry)``.
    """
    batch_axes = tuple(range(xs.ndim - 2))  # the axes a weight gradient sums over, per step
    # A transposed copy made once: folded into the loop's dot, the transpose made that dot
    # 1.7x slower on the CPU (XLA's batched GEMM with a transposed right operand).
    wh_t = lax.optimization_barrier(p.wh.T)

    def _step(carry, inputs):
        dh, dc, dwh, dwx, db = carry
        x, h, c, dh_out = inputs
        i, f, g, o = _gates(x @ p.wx + h @ p.wh + p.b)  # recomputed, not stored
        tc = jnp.tanh(f * c + i * g)
        dh = dh + dh_out
        dc = dc + dh * o * (1.0 - tc * tc)
        dz = jnp.concatenate(
            [dc * g * i * (1.0 - i), dc * c * f * (1.0 - f), dc * i * (1.0 - g * g)]
            + [dh * tc * o * (1.0 - o)],
            axis=-1,
        )
        dwh = dwh + jnp.tensordot(h, dz, (batch_axes, batch_axes))
        dwx = dwx + jnp.tensordot(x, dz, (batch_axes, batch_axes))
        db = db + jnp.sum(dz, axis=batch_axes)
        return (dz @ wh_t, dc * f, dwh, dwx, db), dz @ p.wx.T

    zeros = jax.tree.map(jnp.zeros_like, (p.wh, p.wx, p.b))
    init = (d_last.h, d_last.c, *zeros)
    (dh, dc, dwh, dwx, db), dxs = lax.scan(_step, init, (xs, h_prev, c_prev, dhs), reverse=True)
    return RecurrentParams(b=db, wh=dwh, wx=dwx), dxs, LSTMCarry(dh, dc)


def _lstm_bwd(residuals, cotangents):
    p, xs, h_prev, c_prev = residuals
    d_last, dhs = cotangents
    return lstm_backward(p, xs, h_prev, c_prev, LSTMCarry(*d_last), dhs)


_lstm.defvjp(_lstm_fwd, _lstm_bwd)


def lstm_sequence(
    p: RecurrentParams,
    xs: Float[Array, "time *batch d_in"],
    carry: LSTMCarry | None = None,
) -> tuple[LSTMCarry, Float[Array, "time *batch hidden"]]:
    """An LSTM over ``xs`` (time first): the final carry and the hidden state of every step.

    Equals ``cells.run_cell("lstm", p, x)`` for each sequence ``x = xs[:, b]`` (same operations;
    the gradient is written out by hand, equal to autodiff's to float rounding).

    Args:
      p: the cell's parameters (``cells.lstm_init``), shared by all sequences in the batch.
      xs: inputs, ``[time, *batch, d_in]`` (e.g. one individual's windows as the batch).
      carry: the initial carry (``[*batch, hidden]`` each); zeros by default.

    Returns:
      ``(LSTMCarry(h, c) after the last step, hs [time, *batch, hidden])``.

    >>> from twinjax.twins.cells import lstm_init, run_cell
    >>> p = lstm_init(jax.random.key(0), 3, 4)
    >>> xs = jax.random.normal(jax.random.key(1), (6, 2, 3))  # 6 steps, 2 sequences
    >>> _, hs = lstm_sequence(p, xs)
    >>> _, ref = run_cell("lstm", p, xs[:, 1])
    >>> hs.shape, bool(jnp.allclose(hs[:, 1], ref, atol=1e-6))
    ((6, 2, 4), True)
    """
    if xs.ndim < 2 or xs.shape[-1] != p.wx.shape[0]:
        raise ValueError(
            f"xs must be [time, *batch, d_in] with d_in={p.wx.shape[0]}; got shape {xs.shape}"
        )
    if carry is None:
        zeros = jnp.zeros(xs.shape[1:-1] + (p.wh.shape[0],), xs.dtype)
        carry = LSTMCarry(zeros, zeros)
    return _lstm(p, xs, carry)
