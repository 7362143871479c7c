"""An LSTM over a whole sequence, laid out for training speed (time-major, hand-written backward).

``cells.run_cell`` is the reference: one sequence ``[time, d_in]``, ``lax.scan`` over the cell's
step, autodiff for the gradient. :func:`lstm_sequence` computes the same function for a sequence
with any batch axes after time (``[time, windows, d_in]``: one individual's windows share its
weights). Under ``jax.vmap`` over individuals, each time step is then one batched GEMM
``[individuals] x ([windows, hidden] @ [hidden, 4 hidden])`` over contiguous memory.

Why a hand-written backward pass (``jax.custom_vjp``), for the ``scripts/bench_twins.py``
workload (N=256, 16 windows x 96 steps, LSTM 32; its speed and memory: README "Scaling out"):

- autodiff of the per-window scan kept the input projection of every step ([N, windows, time,
  4 hidden], 200 MB) and moved it to time-major order and back (copies of 200 MB); fresh temporary
  buffers cost page faults on every step;
- autodiff accumulates each weight gradient inside the loop in whatever layout the transpose
  rule yields; here the backward loop recomputes the gates from the stored carries (no stored
  gates: 4x less memory than keeping them), and the weight gradients are accumulated from each
  step's gate gradients without ever stacking them.

Residuals kept for the backward pass are the carries entering each step, ``h`` and ``c``
([time, *batch, hidden] each), 2/5 of what keeping the gates would take.
"""

from functools import partial
from typing import Literal

import jax
import jax.numpy as jnp
from jax import lax
from jaxtyping import Array, Float

from twinjax.twins.cells import Dense, LSTMCarry, RecurrentParams, dense
from twinjax.twins.lstm_gradient import (
    gate_activations,
    lstm_backward,
    pack_bfloat16,
    split_gates,
)


def _forward(p: RecurrentParams, xs, carry: LSTMCarry, readout: Dense | None, residuals=None):
    """The scan; also returns the carry entering each step (the backward pass's residuals), in
    ``xs``'s dtype or, with ``residuals="bfloat16"``, packed by :func:`pack_bfloat16` as each step emits
    it (no full-precision stack is made)."""

    def _step(carry, x_t):
        h, c = carry
        i, f, g, o = split_gates(gate_activations(x_t @ p.wx + h @ p.wh + p.b))
        c_next = f * c + i * g
        h_next = o * jnp.tanh(c_next)
        out = h_next if readout is None else dense(readout, h_next)
        prev = (pack_bfloat16(h), pack_bfloat16(c)) if residuals == "bfloat16" else (h, c)
        return (h_next, c_next), (out, prev)

    (h, c), (outs, prev) = lax.scan(_step, (carry.h, carry.c), xs)
    return LSTMCarry(h, c), outs, prev


@partial(jax.custom_vjp, nondiff_argnums=(4,))
def _lstm(p: RecurrentParams, xs, carry: LSTMCarry, readout: Dense | None, residuals: str):
    last, outs, _ = _forward(p, xs, carry, readout)
    return last, outs


def _lstm_fwd(p, xs, carry, readout, residuals):
    last, outs, prev = _forward(p, xs, carry, readout, residuals)
    return (last, outs), (p, xs, prev, readout)


def _lstm_bwd(_, residuals, cotangents):
    p, xs, prev, readout = residuals
    d_last, d_outs = cotangents
    return lstm_backward(p, xs, prev, LSTMCarry(*d_last), d_outs, readout)


_lstm.defvjp(_lstm_fwd, _lstm_bwd)


def lstm_sequence(
    p: RecurrentParams,
    xs: Float[Array, "time *batch d_in"],
    carry: LSTMCarry | None = None,
    *,
    readout: Dense | None = None,
    kernel: Literal["xla", "pallas"] = "xla",
    residuals: Literal["float32", "bfloat16"] = "float32",
    interpret: bool = False,
) -> tuple[LSTMCarry, Float[Array, "time *batch d_out"]]:
    """An LSTM over ``xs`` (time first): the final carry and the hidden state of every step.

    Equals ``cells.run_cell("lstm", p, x)`` for each sequence ``x = xs[:, b]`` (the same
    function; the gradient is written out by hand, equal to autodiff's to float rounding).

    Args:
      p: the cell's parameters (``cells.lstm_init``), shared by all sequences in the batch.
      xs: inputs, ``[time, *batch, d_in]`` (e.g. one individual's windows as the batch).
      carry: the initial carry (``[*batch, hidden]`` each); zeros by default.
      readout: a linear layer applied to each step's hidden state inside the loop (e.g. a
        prediction head): the hidden states are then never stacked, and ``d_out`` is its size
        (``hidden`` without it).
      kernel: ``"xla"`` (the scan above) or ``"pallas"``: the forward pass as one fused Pallas
        kernel per individual (``twins.fused``; for GPUs, same backward pass), without readout.
      residuals: (``kernel="xla"``) the dtype in which the carries entering each step are kept
        for the backward pass: ``"bfloat16"`` halves that memory; the forward pass, the carried
        state and the gradients' arithmetic and accumulation stay in ``xs``'s dtype, but the
        gates are recomputed from carries rounded to 8 significant bits, so the gradient is
        approximate (relative error of order 2^-8; ``tests/twins/test_sequence.py`` bounds it).
      interpret: run the Pallas kernel in interpret mode (tests on the CPU).

    Returns:
      ``(LSTMCarry(h, c) after the last step, outs [time, *batch, d_out])``.

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
    batch, hidden = xs.shape[1:-1], p.wh.shape[0]
    if carry is None:
        # From xs, not jnp.zeros: inside shard_map the carry must vary over the same mesh axes
        # as the scan's outputs, which it then does.
        zeros = jnp.broadcast_to(jnp.zeros_like(xs[0, ..., :1]), batch + (hidden,))
        carry = LSTMCarry(zeros, zeros)
    flat = lambda a: a.reshape((-1, a.shape[-1]))  # the batch axes as one: [B, ...]
    flat_xs, flat_carry = xs.reshape((xs.shape[0], -1, xs.shape[-1])), jax.tree.map(flat, carry)
    if residuals not in ("float32", "bfloat16"):
        raise ValueError(f"residuals must be 'float32' or 'bfloat16', not {residuals!r}")
    if kernel == "pallas":
        if residuals != "float32":
            raise ValueError("kernel='pallas' keeps its residuals in float32")
        if readout is not None:
            raise ValueError("kernel='pallas' has no readout; apply the layer to its outputs")
        from twinjax.twins.fused import lstm_pallas  # Pallas is imported only when asked for

        last, outs = lstm_pallas(p, flat_xs, LSTMCarry(*flat_carry), interpret=interpret)
    elif kernel == "xla":
        last, outs = _lstm(p, flat_xs, flat_carry, readout, residuals)
    else:
        raise ValueError(f"kernel must be 'xla' or 'pallas', not {kernel!r}")
    last = jax.tree.map(lambda a: a.reshape(batch + (hidden,)), last)
    return LSTMCarry(*last), outs.reshape(xs.shape[:-1] + (outs.shape[-1],))
