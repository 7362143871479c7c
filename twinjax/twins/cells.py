"""Recurrent cells as pure functions over typed parameters (one time step, one individual)."""

from collections.abc import Callable
from typing import Any, NamedTuple, Protocol

import jax
import jax.numpy as jnp
from jaxtyping import Array, Float, PRNGKeyArray


def glorot(key: PRNGKeyArray, shape: tuple[int, int]) -> Array:
    limit = jnp.sqrt(6.0 / (shape[0] + shape[1]))
    return jax.random.uniform(key, shape, minval=-limit, maxval=limit)


# Field order is alphabetical, as a dict's would be, so flattening order (hence optimizer sums and
# checkpoints) matches the dict layout these types replaced.
class Dense(NamedTuple):
    """``y = x @ w + b``."""

    b: Float[Array, " d_out"]
    w: Float[Array, "d_in d_out"]


class RecurrentParams(NamedTuple):
    """An LSTM (4 gates) or GRU (3 gates): input weights ``wx``, recurrent ``wh``, bias ``b``."""

    b: Float[Array, " gates"]
    wh: Float[Array, "hidden gates"]
    wx: Float[Array, "d_in gates"]


def dense_init(key: PRNGKeyArray, d_in: int, d_out: int) -> Dense:
    return Dense(b=jnp.zeros(d_out), w=glorot(key, (d_in, d_out)))


def dense(p: Dense, x: Float[Array, "... d_in"]) -> Float[Array, "... d_out"]:
    return x @ p.w + p.b


class LSTMCarry(NamedTuple):
    h: Float[Array, " hidden"]
    c: Float[Array, " hidden"]


def lstm_init(key: PRNGKeyArray, d_in: int, hidden: int) -> RecurrentParams:
    kx, kh = jax.random.split(key)
    bias = jnp.zeros(4 * hidden).at[hidden : 2 * hidden].set(1.0)  # forget gate starts open
    return RecurrentParams(
        b=bias, wh=glorot(kh, (hidden, 4 * hidden)), wx=glorot(kx, (d_in, 4 * hidden))
    )


def lstm_carry(hidden: int) -> LSTMCarry:
    return LSTMCarry(jnp.zeros(hidden), jnp.zeros(hidden))


def lstm_project(p: RecurrentParams, x: Float[Array, "... d_in"]) -> Float[Array, "... gates"]:
    """The input half of the gates; for a whole sequence it is one matmul outside the time loop."""
    return x @ p.wx + p.b


def lstm_step_projected(
    p: RecurrentParams, carry: LSTMCarry, zx: Float[Array, " gates"]
) -> LSTMCarry:
    z = zx + carry.h @ p.wh
    i, f, g, o = jnp.split(z, 4)
    c = jax.nn.sigmoid(f) * carry.c + jax.nn.sigmoid(i) * jnp.tanh(g)
    return LSTMCarry(jax.nn.sigmoid(o) * jnp.tanh(c), c)


def lstm_step(p: RecurrentParams, carry: LSTMCarry, x: Float[Array, " d_in"]) -> LSTMCarry:
    return lstm_step_projected(p, carry, lstm_project(p, x))


def gru_init(key: PRNGKeyArray, d_in: int, hidden: int) -> RecurrentParams:
    kx, kh = jax.random.split(key)
    return RecurrentParams(
        b=jnp.zeros(3 * hidden),
        wh=glorot(kh, (hidden, 3 * hidden)),
        wx=glorot(kx, (d_in, 3 * hidden)),
    )


def gru_carry(hidden: int) -> Float[Array, " hidden"]:
    return jnp.zeros(hidden)


def gru_project(p: RecurrentParams, x: Float[Array, "... d_in"]) -> Float[Array, "... gates"]:
    return x @ p.wx + p.b


def gru_step_projected(p: RecurrentParams, h: Float[Array, " hidden"], zx: Float[Array, " gates"]):
    hidden = h.shape[-1]
    zh = h @ p.wh
    r = jax.nn.sigmoid(zx[:hidden] + zh[:hidden])
    u = jax.nn.sigmoid(zx[hidden : 2 * hidden] + zh[hidden : 2 * hidden])
    n = jnp.tanh(zx[2 * hidden :] + r * zh[2 * hidden :])
    return (1.0 - u) * n + u * h


def gru_step(
    p: RecurrentParams, h: Float[Array, " hidden"], x: Float[Array, " d_in"]
) -> Float[Array, " hidden"]:
    return gru_step_projected(p, h, gru_project(p, x))


class CellInit(Protocol):
    def __call__(self, key: PRNGKeyArray, d_in: int, hidden: int) -> RecurrentParams: ...


class CellStep(Protocol):
    """``(params, carry, x_t) -> carry``; the carry is the cell's own (e.g. ``LSTMCarry``)."""

    def __call__(self, p: RecurrentParams, carry: Any, x: Float[Array, " d"]) -> Any: ...


class CellProject(Protocol):
    """The input half of the gates, for any leading axes (one matmul outside the time loop)."""

    def __call__(self, p: RecurrentParams, x: Float[Array, "... d_in"]) -> Array: ...


class Cell(NamedTuple):
    """A recurrent cell as pure functions, in the manner of optax's typed ``(init, update)``."""

    init: CellInit
    carry: Callable[[int], Any]  # hidden size -> zero carry
    step: CellStep
    output: Callable[[Any], Array]  # carry -> hidden state
    project: CellProject
    step_projected: CellStep  # (params, carry, projected x_t) -> carry


CELLS = {
    "lstm": Cell(
        lstm_init, lstm_carry, lstm_step, lambda c: c.h, lstm_project, lstm_step_projected
    ),
    "gru": Cell(gru_init, gru_carry, gru_step, lambda h: h, gru_project, gru_step_projected),
}


def get_cell(name: str) -> Cell:
    if name not in CELLS:
        raise ValueError(f"unknown cell {name!r}; choose one of {sorted(CELLS)}")
    return CELLS[name]


def _chunk_size(length: int, chunk: int) -> int:
    """The largest divisor of ``length`` not above ``chunk`` (so chunks tile the sequence)."""
    return max(d for d in range(1, min(chunk, length) + 1) if length % d == 0)


def run_cell(
    name: str,
    p: RecurrentParams,
    xs: Float[Array, "time d_in"],
    carry=None,
    *,
    remat_chunk: int = 0,
    emit: Callable[[Array], Any] | None = None,
):
    """Runs a cell over a sequence (``lax.scan``): returns the final carry and hidden states [T, H].

    The input projection of every step is computed before the loop as one matmul; only the
    recurrent half stays inside the scan.

    ``remat_chunk > 0`` trades compute for memory in the backward pass: the sequence is cut into
    chunks of (at most) that many steps, each a ``jax.checkpoint``-ed scan whose input projection
    and gate activations are recomputed when the gradient needs them; only the carries at chunk
    boundaries and the hidden states are kept. The values are the same computation.

    ``emit(h_t)``, when given, is returned per step instead of the hidden state (e.g. a head's
    prediction): inside rematerialized chunks the hidden states then need not be kept at all.
    """
    cell = get_cell(name)
    carry = cell.carry(p.wh.shape[0]) if carry is None else carry

    out = cell.output if emit is None else (lambda c: emit(cell.output(c)))

    def _step(carry, zx_t):
        carry = cell.step_projected(p, carry, zx_t)
        return carry, out(carry)

    if remat_chunk <= 0:
        return jax.lax.scan(_step, carry, cell.project(p, xs))
    k = _chunk_size(xs.shape[0], remat_chunk)

    @jax.checkpoint
    def _chunk(carry, x_chunk):
        return jax.lax.scan(_step, carry, cell.project(p, x_chunk))

    carry, outs = jax.lax.scan(_chunk, carry, xs.reshape(xs.shape[0] // k, k, xs.shape[-1]))
    return carry, jax.tree.map(lambda o: o.reshape((xs.shape[0],) + o.shape[2:]), outs)
