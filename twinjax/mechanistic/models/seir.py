"""SEIR epidemic as a mechanistic model: susceptible, exposed, infectious, removed fractions and
the cumulative incidence, with the contact rate scaled per interval by an input (an intervention
such as distancing)::

    dS/dt = -c beta S I,  dE/dt = c beta S I - sigma E,  dI/dt = sigma E - gamma I,
    dR/dt = gamma I,  dC/dt = sigma E  (cases: who became infectious)

Parameters (log scale): ``lbeta`` (transmission rate), ``lsigma`` (1 / latent period),
``lgamma`` (1 / infectious period), ``li0`` (the fraction infectious at the start, the rest
susceptible). The input per interval is the contact multiplier ``c`` (1: no intervention); the
observation is the cumulative incidence ``C``. With ``c = 1`` the final size ``z`` solves
``z = S0 (1 - exp(-R0 (z + I0)))``, ``R0 = beta / gamma``, as for SIR (``tests/mechanistic``).
"""

import jax.numpy as jnp
from jaxtyping import Array, Float

from twinjax.mechanistic.protocol import MechanisticModel


def _init(theta: Float[Array, " 4"]) -> Float[Array, " 5"]:
    i0 = jnp.exp(theta[3])
    return jnp.stack([1.0 - i0, jnp.zeros_like(i0), i0, jnp.zeros_like(i0), jnp.zeros_like(i0)])


def _rhs(x: Float[Array, " 5"], theta: Float[Array, " 4"], contact) -> Float[Array, " 5"]:
    beta, sigma, gamma = jnp.exp(theta[0]), jnp.exp(theta[1]), jnp.exp(theta[2])
    infection = contact * beta * x[0] * x[2]
    onset, removal = sigma * x[1], gamma * x[2]
    return jnp.stack([-infection, infection - onset, onset - removal, removal, onset])


SEIR = MechanisticModel(
    param_names=("lbeta", "lsigma", "lgamma", "li0"),
    init_state=_init,
    rhs=_rhs,
    observe=lambda x, theta: x[4],
)
