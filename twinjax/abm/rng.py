"""Fast per-agent uniforms: a counter-based integer hash keyed by a JAX PRNG key.

Threefry, JAX's default generator, costs about 20 ns per number on a CPU core, which dominates
a step that draws one number per agent. Here each step's key gives two 32-bit words ``(a, b)``
and agent ``i`` gets ``h(h(i + a) ^ b)``, ``h`` the "lowbias32" integer finalizer (xor-shift /
multiply, two multiplications). It is deterministic in the key, vectorizes, and passes the
uniformity and independence checks in ``tests/abm/test_abm_rng.py``; it is not cryptographic.
"""

import jax
import jax.numpy as jnp
from jaxtyping import Array, Float, Int, PRNGKeyArray, UInt32


def _mix(x):
    x = x ^ (x >> 16)
    x = x * jnp.uint32(0x7FEB352D)
    x = x ^ (x >> 15)
    x = x * jnp.uint32(0x846CA68B)
    return x ^ (x >> 16)


def hash_bits(key: PRNGKeyArray, n: int, *, start: int | Int[Array, ""] = 0) -> UInt32[Array, " n"]:
    """32 random bits for each of the counters ``start .. start + n``."""
    a, b = jax.random.bits(key, (2,), jnp.uint32)
    counter = jnp.arange(n, dtype=jnp.uint32) + jnp.asarray(start, jnp.uint32)
    return _mix(_mix(counter + a) ^ b)


def hash_integers(key: PRNGKeyArray, n: int, high: int) -> Int[Array, " n"]:
    """Integers in ``[0, high)`` (modulo reduction: relative bias below ``high / 2**32``)."""
    return (hash_bits(key, n) % jnp.uint32(high)).astype(jnp.int32)


def hash_uniforms(
    key: PRNGKeyArray, n: int, *, start: int | Int[Array, ""] = 0
) -> Float[Array, " n"]:
    """Uniforms in ``[0, 1)`` (24-bit resolution) for counters ``start .. start + n``."""
    h = hash_bits(key, n, start=start)
    return (h >> 8).astype(jnp.float32) * jnp.float32(1.0 / (1 << 24))
