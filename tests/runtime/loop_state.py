"""A tiny checkpointable loop state for the run_loop tests: parameters driven by a PRNG key that
is part of the state, so an exact resume is visible in the parameters and the losses."""

from typing import NamedTuple

import jax
import jax.numpy as jnp


class State(NamedTuple):
    params: jax.Array
    key: jax.Array
    step: jax.Array


def start() -> State:
    return State(jnp.zeros(3), jax.random.key_data(jax.random.key(0)), jnp.zeros((), jnp.int32))


def step(s: State):
    key, sub = jax.random.split(jax.random.wrap_key_data(s.key))
    params = 0.9 * s.params + jax.random.normal(sub, (3,))
    return State(params, jax.random.key_data(key), s.step + 1), jnp.sum(params**2)
