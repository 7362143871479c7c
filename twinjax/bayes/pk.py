"""Closed-form pharmacokinetics: one-compartment models with first-order elimination.

Parameters are on the log scale (``lKe``, ``lKa``, ``lCl``) as in Pinheiro and Bates's ``SSfol``.
Rates are per unit time, clearance is volume per unit time (per unit of body weight when the dose
is per unit of body weight), and the volume of distribution is ``V = Cl / Ke``. Doses combine by
superposition: the concentration is the sum of single-dose curves shifted to each dose time, and a
dose contributes nothing before it is given. Padding doses have amount 0.
"""

import jax.numpy as jnp
from jaxtyping import Array, ArrayLike, Float


def _one_minus_exp_over(x):
    """(1 - exp(-x)) / x, exact to rounding near x = 0 (where it tends to 1)."""
    small = jnp.abs(x) < 1e-6
    safe = jnp.where(small, 1.0, x)
    return jnp.where(small, 1.0 - 0.5 * x, -jnp.expm1(-safe) / safe)


def bateman(tau, ke, ka):
    """(exp(-ke tau) - exp(-ka tau)) / (ka - ke) for tau >= 0, finite when ka == ke.

    The expression is symmetric in (ke, ka); factoring out the slower exponential keeps every
    intermediate finite whichever rate is larger.
    """
    slow, gap = jnp.minimum(ke, ka), jnp.abs(ka - ke)
    return jnp.exp(-slow * tau) * tau * _one_minus_exp_over(gap * tau)


def oral_one_compartment(
    t: Float[ArrayLike, " time"],
    dose_times: Float[ArrayLike, " doses"],
    dose_amounts: Float[ArrayLike, " doses"],
    lKe: Float[ArrayLike, ""],
    lKa: Float[ArrayLike, ""],
    lCl: Float[ArrayLike, ""],
) -> Float[Array, " time"]:
    """Concentration after oral doses with first-order absorption (rate ``Ka``) and elimination.

    Single dose ``D`` at time 0: ``C(t) = D Ke Ka / (Cl (Ka - Ke)) (exp(-Ke t) - exp(-Ka t))``.
    """
    ke, ka, cl = jnp.exp(lKe), jnp.exp(lKa), jnp.exp(lCl)
    tau = t[:, None] - dose_times[None, :]
    given = tau >= 0
    tau = jnp.where(given, tau, 0.0)
    per_dose = dose_amounts[None, :] * ke * ka / cl * bateman(tau, ke, ka)
    return jnp.sum(jnp.where(given, per_dose, 0.0), axis=-1)


def iv_bolus_one_compartment(
    t: Float[ArrayLike, " time"],
    dose_times: Float[ArrayLike, " doses"],
    dose_amounts: Float[ArrayLike, " doses"],
    lKe: Float[ArrayLike, ""],
    lCl: Float[ArrayLike, ""],
) -> Float[Array, " time"]:
    """Concentration after intravenous boluses: single dose ``C(t) = D Ke / Cl exp(-Ke t)``."""
    ke, cl = jnp.exp(lKe), jnp.exp(lCl)
    tau = t[:, None] - dose_times[None, :]
    given = tau >= 0
    per_dose = dose_amounts[None, :] * ke / cl * jnp.exp(-ke * jnp.where(given, tau, 0.0))
    return jnp.sum(jnp.where(given, per_dose, 0.0), axis=-1)


def oral_steady_state(
    t: Float[ArrayLike, " time"],
    dose: Float[ArrayLike, ""],
    interval: float,
    lKe: Float[ArrayLike, ""],
    lKa: Float[ArrayLike, ""],
    lCl: Float[ArrayLike, ""],
) -> Float[Array, " time"]:
    """Steady-state concentration ``t`` after a dose (``0 <= t < interval``) repeated every
    ``interval`` (requires ``Ka != Ke``).

    The limit of infinitely many superposed doses: each exponential ``exp(-k t)`` becomes
    ``exp(-k t) / (1 - exp(-k interval))``.
    """
    ke, ka, cl = jnp.exp(lKe), jnp.exp(lKa), jnp.exp(lCl)
    acc_e = jnp.exp(-ke * t) / -jnp.expm1(-ke * interval)
    acc_a = jnp.exp(-ka * t) / -jnp.expm1(-ka * interval)
    return dose * ke * ka / (cl * (ka - ke)) * (acc_e - acc_a)


def oral_predict(t, theta: dict, regimen) -> Float[Array, " time"]:
    """Adapter for :func:`~twinjax.bayes.hierarchical_model`: ``theta`` has lKe, lKa, lCl;
    ``regimen`` is ``(dose_times, dose_amounts)``."""
    dose_times, dose_amounts = regimen
    return oral_one_compartment(
        t, dose_times, dose_amounts, theta["lKe"], theta["lKa"], theta["lCl"]
    )


def iv_bolus_predict(t, theta: dict, regimen) -> Float[Array, " time"]:
    """Adapter for IV boluses: ``theta`` has lKe, lCl; ``regimen`` is
    ``(dose_times, dose_amounts)``."""
    dose_times, dose_amounts = regimen
    return iv_bolus_one_compartment(t, dose_times, dose_amounts, theta["lKe"], theta["lCl"])
