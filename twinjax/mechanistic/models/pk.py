"""Compartmental pharmacokinetics as mechanistic models: one compartment with first-order
absorption (Pinheiro and Bates's ``SSfol``) and two compartments (central and peripheral) with
oral, IV bolus and infusion doses.

The state is the drug amount in each compartment (the gut first); the inputs per interval are
:class:`Dosing`: oral and IV bolus amounts given at the interval's start (the model's ``event``)
and an infusion rate over it. Parameters are on the log scale, named as in
:mod:`twinjax.bayes.pk` and :mod:`twinjax.bayes.pk_compartments`, whose closed forms these ODEs
reproduce (``tests/mechanistic``)::

    one compartment (lKe, lKa, lCl), V = Cl / Ke:
        dA_g/dt = -Ka A_g,  dA_c/dt = Ka A_g - Ke A_c + rate,  C = A_c / V
    two compartments (lCl, lV1, lQ, lV2, lKa):
        dA_g/dt = -Ka A_g
        dA_1/dt = Ka A_g - (Cl + Q) / V1 A_1 + Q / V2 A_2 + rate,  dA_2/dt = Q / V1 A_1 - Q / V2 A_2
        C = A_1 / V1
"""

from typing import NamedTuple

import jax.numpy as jnp
from jaxtyping import Array, ArrayLike, Float

from twinjax.mechanistic.protocol import MechanisticModel


class Dosing(NamedTuple):
    """Doses per interval of the grid (each ``[intervals]``; one individual)."""

    oral: Float[ArrayLike, "*intervals"]  # amount by mouth at the interval's start (into the gut)
    bolus: Float[ArrayLike, "*intervals"]  # IV bolus at the interval's start (central)
    rate: Float[ArrayLike, "*intervals"]  # infusion rate over the interval (central)


def dosing(
    oral: Float[ArrayLike, " intervals"] | None = None,
    bolus: Float[ArrayLike, " intervals"] | None = None,
    rate: Float[ArrayLike, " intervals"] | None = None,
) -> Dosing:
    """A :class:`Dosing` with zeros for the routes not given (at least one is)."""
    given = next(a for a in (oral, bolus, rate) if a is not None)
    zero = jnp.zeros(jnp.shape(given), jnp.float32)
    fill = lambda a: zero if a is None else jnp.asarray(a, jnp.float32)
    return Dosing(fill(oral), fill(bolus), fill(rate))


def _dose(x: Float[Array, " n"], theta, u: Dosing) -> Float[Array, " n"]:
    return x.at[0].add(u.oral).at[1].add(u.bolus)


def _one_rhs(x: Float[Array, " 2"], theta, u: Dosing) -> Float[Array, " 2"]:
    ke, ka = jnp.exp(theta[0]), jnp.exp(theta[1])
    absorbed = ka * x[0]
    return jnp.stack([-absorbed, absorbed - ke * x[1] + u.rate])


ONE_COMPARTMENT_ORAL = MechanisticModel(
    param_names=("lKe", "lKa", "lCl"),
    init_state=lambda theta: jnp.zeros(2, jnp.result_type(theta)),
    rhs=_one_rhs,
    observe=lambda x, theta: x[1] * jnp.exp(theta[0] - theta[2]),  # A / V, V = Cl / Ke
    event=_dose,
)


def _two_rhs(x: Float[Array, " 3"], theta, u: Dosing) -> Float[Array, " 3"]:
    cl, v1, q, v2, ka = (jnp.exp(theta[i]) for i in range(5))
    absorbed = ka * x[0]
    to_peripheral = q / v1 * x[1] - q / v2 * x[2]
    central = absorbed - cl / v1 * x[1] - to_peripheral + u.rate
    return jnp.stack([-absorbed, central, to_peripheral])


TWO_COMPARTMENT = MechanisticModel(
    param_names=("lCl", "lV1", "lQ", "lV2", "lKa"),
    init_state=lambda theta: jnp.zeros(3, jnp.result_type(theta)),
    rhs=_two_rhs,
    observe=lambda x, theta: x[1] * jnp.exp(-theta[1]),
    event=_dose,
)
