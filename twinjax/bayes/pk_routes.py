"""One-compartment pharmacokinetics with mixed dose routes: IV bolus, oral and zero-order infusion.

A regimen is a :class:`Doses` (times, amounts, route codes, infusion durations); doses combine by
superposition as in :mod:`twinjax.bayes.pk`, whose closed forms these reuse. With elimination rate
``Ke = Cl / V`` and ``tau`` the time since a dose of amount ``D``:

- bolus: ``C = D / V exp(-Ke tau)``;
- oral (first-order absorption ``Ka``, bioavailability 1): ``C = D Ka / (V (Ka - Ke))
  (exp(-Ke tau) - exp(-Ka tau))``;
- infusion over ``T`` (rate ``D / T``): ``C = D / (T Cl) (1 - exp(-Ke min(tau, T)))
  exp(-Ke max(tau - T, 0))``.

Three parameterizations (log scale): ``(lCl, lV)`` (IV only), ``(lCl, lV, lKa)`` and
Pinheiro and Bates's ``(lKe, lKa, lCl)`` (``SSfol``). :func:`pk_derived` gives the volume, the
clearance and the elimination half-life ``ln 2 / Ke`` from any of them.
"""

import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, ArrayLike, Float

from twinjax.bayes.doses import INFUSION, ORAL, Doses
from twinjax.bayes.pk import bateman, oral_one_compartment
from twinjax.bayes.pk_compartments import compartment_derived, polyexponential


def one_compartment(
    t: Float[ArrayLike, " time"],
    doses: Doses,
    lKe: Float[ArrayLike, ""],
    lCl: Float[ArrayLike, ""],
    lKa: Float[ArrayLike, ""] | None = None,
) -> Float[Array, " time"]:
    """Concentration at times ``t`` after ``doses`` (superposed; a dose adds nothing before it).

    Oral doses need ``lKa``; without it they count as boluses (the model builder refuses oral
    doses for an IV parameterization before this point).
    """
    if doses.ss is not None:  # steady-state doses: the general sum-of-exponentials form
        ke, cl = jnp.exp(lKe), jnp.exp(lCl)
        return polyexponential(t, doses, jnp.reshape(ke / cl, (1,)), jnp.reshape(ke, (1,)), lKa)
    if doses.route is None:
        if lKa is None:
            raise ValueError("oral doses need an absorption rate lKa")
        return oral_one_compartment(t, doses.times, doses.amounts, lKe, lKa, lCl)
    ke, cl = jnp.exp(lKe), jnp.exp(lCl)
    times, amounts = jnp.asarray(doses.times), jnp.asarray(doses.amounts)
    route, duration = jnp.asarray(doses.route), jnp.asarray(doses.duration)
    tau = t[:, None] - times[None, :]
    given = tau >= 0
    tau = jnp.where(given, tau, 0.0)
    a = amounts[None, :]
    per_dose = a * ke / cl * jnp.exp(-ke * tau)
    if lKa is not None:
        ka = jnp.exp(lKa)
        oral = a * ke * ka / cl * bateman(tau, ke, ka)
        per_dose = jnp.where(route[None, :] == ORAL, oral, per_dose)
    is_inf = route[None, :] == INFUSION
    span = jnp.where(is_inf & (duration[None, :] > 0), duration[None, :], 1.0)
    inside = jnp.minimum(tau, span)
    infusion = a / (span * cl) * -jnp.expm1(-ke * inside) * jnp.exp(-ke * (tau - inside))
    per_dose = jnp.where(is_inf, infusion, per_dose)
    return jnp.sum(jnp.where(given, per_dose, 0.0), axis=-1)


def iv_cl_v_predict(t, theta: dict, doses: Doses) -> Float[Array, " time"]:
    """``(lCl, lV)``: boluses and infusions (``Ke = Cl / V``)."""
    return one_compartment(t, doses, theta["lCl"] - theta["lV"], theta["lCl"])


def oral_cl_v_ka_predict(t, theta: dict, doses: Doses) -> Float[Array, " time"]:
    """``(lCl, lV, lKa)``: oral doses with first-order absorption, boluses and infusions."""
    return one_compartment(t, doses, theta["lCl"] - theta["lV"], theta["lCl"], theta["lKa"])


def oral_ke_ka_cl_predict(t, theta: dict, doses: Doses) -> Float[Array, " time"]:
    """``(lKe, lKa, lCl)`` as in ``SSfol`` (the parameterization of nlme's Theoph fits)."""
    return one_compartment(t, doses, theta["lKe"], theta["lCl"], theta["lKa"])


def pk_derived(theta: dict) -> dict[str, np.ndarray]:
    """Volume ``V``, clearance ``Cl`` and elimination half-life ``t_half = ln 2 / Ke`` (natural
    units) from draws of any of the parameterizations (arrays of any shape), and the AUC of a unit
    dose ``1 / Cl``. Two and three compartments (``lV1``): see
    :func:`~twinjax.bayes.pk_compartments.compartment_derived`."""
    if "lV1" in theta:
        return compartment_derived(theta)
    lcl = np.asarray(theta["lCl"])
    lke = np.asarray(theta["lKe"]) if "lKe" in theta else lcl - np.asarray(theta["lV"])
    out = {"V": np.exp(lcl - lke), "Cl": np.exp(lcl), "t_half": np.log(2.0) / np.exp(lke)}
    out["auc_unit_dose"] = np.exp(-lcl)
    if "lKa" in theta:
        out["t_half_absorption"] = np.log(2.0) / np.exp(np.asarray(theta["lKa"]))
    return {k: np.asarray(v) for k, v in out.items()}
