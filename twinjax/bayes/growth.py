"""Growth curves for hierarchical twins: random intercept and slope, and polynomials in time."""

from collections.abc import Callable

import jax.numpy as jnp
from jaxtyping import Array, Float


def linear_predict(t: Float[Array, " time"], theta: dict, regimen=None) -> Float[Array, " time"]:
    """``intercept + slope * t`` (the regimen is ignored)."""
    return theta["intercept"] + theta["slope"] * t


def polynomial_names(degree: int) -> tuple[str, ...]:
    """Parameter names ``c0 .. c{degree}`` of :func:`polynomial_predict`."""
    return tuple(f"c{k}" for k in range(degree + 1))


def polynomial_predict(degree: int) -> Callable:
    """A predict function ``sum_k c_k t^k`` for ``k = 0 .. degree``."""
    names = polynomial_names(degree)

    def predict(t, theta: dict, regimen=None):
        coef = jnp.stack([theta[n] for n in names])
        return jnp.polyval(coef[::-1], t)

    return predict
