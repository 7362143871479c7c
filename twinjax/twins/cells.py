"""Recurrent cells as pure functions over parameter dicts (one time step, one individual)."""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp
from jaxtyping import Array, Float, PRNGKeyArray


def _glorot(key: PRNGKeyArray, shape: tuple[int, int]) -> Array:
    limit = jnp.sqrt(6.0 / (shape[0] + shape[1]))
    return jax.random.uniform(key, shape, minval=-limit, maxval=limit)


def dense_init(key: PRNGKeyArray, d_in: int, d_out: int) -> dict:
    return {"w": _glorot(key, (d_in, d_out)), "b": jnp.zeros(d_out)}


def dense(p: dict, x: Float[Array, "... d_in"]) -> Float[Array, "... d_out"]:
    return x @ p["w"] + p["b"]


class LSTMCarry(NamedTuple):
    h: Float[Array, " hidden"]
    c: Float[Array, " hidden"]


def lstm_init(key: PRNGKeyArray, d_in: int, hidden: int) -> dict:
    kx, kh = jax.random.split(key)
    bias = jnp.zeros(4 * hidden).at[hidden : 2 * hidden].set(1.0)  # forget gate starts open
    return {
        "wx": _glorot(kx, (d_in, 4 * hidden)),
        "wh": _glorot(kh, (hidden, 4 * hidden)),
        "b": bias,
    }


def lstm_carry(hidden: int) -> LSTMCarry:
    return LSTMCarry(jnp.zeros(hidden), jnp.zeros(hidden))


def lstm_step(p: dict, carry: LSTMCarry, x: Float[Array, " d_in"]) -> LSTMCarry:
    z = x @ p["wx"] + carry.h @ p["wh"] + p["b"]
    i, f, g, o = jnp.split(z, 4)
    c = jax.nn.sigmoid(f) * carry.c + jax.nn.sigmoid(i) * jnp.tanh(g)
    return LSTMCarry(jax.nn.sigmoid(o) * jnp.tanh(c), c)


def gru_init(key: PRNGKeyArray, d_in: int, hidden: int) -> dict:
    kx, kh = jax.random.split(key)
    return {
        "wx": _glorot(kx, (d_in, 3 * hidden)),
        "wh": _glorot(kh, (hidden, 3 * hidden)),
        "b": jnp.zeros(3 * hidden),
    }


def gru_carry(hidden: int) -> Float[Array, " hidden"]:
    return jnp.zeros(hidden)


def gru_step(
    p: dict, h: Float[Array, " hidden"], x: Float[Array, " d_in"]
) -> Float[Array, " hidden"]:
    hidden = h.shape[-1]
    zx = x @ p["wx"] + p["b"]
    zh = h @ p["wh"]
    r = jax.nn.sigmoid(zx[:hidden] + zh[:hidden])
    u = jax.nn.sigmoid(zx[hidden : 2 * hidden] + zh[hidden : 2 * hidden])
    n = jnp.tanh(zx[2 * hidden :] + r * zh[2 * hidden :])
    return (1.0 - u) * n + u * h


class Cell(NamedTuple):
    init: callable
    carry: callable
    step: callable
    output: callable  # carry -> hidden state


CELLS = {
    "lstm": Cell(lstm_init, lstm_carry, lstm_step, lambda c: c.h),
    "gru": Cell(gru_init, gru_carry, gru_step, lambda h: h),
}


def get_cell(name: str) -> Cell:
    if name not in CELLS:
        raise ValueError(f"unknown cell {name!r}; choose one of {sorted(CELLS)}")
    return CELLS[name]
