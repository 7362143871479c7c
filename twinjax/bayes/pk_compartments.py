"""Linear mammillary PK models (one, two, three compartments) as sums of exponentials, with bolus,
first-order oral and zero-order infusion doses, and steady-state doses.

A linear model's concentration after a unit bolus into the central compartment is a sum of
exponentials ``h(tau) = sum_m c_m exp(-lambda_m tau)`` (its impulse response); every dose route is
``h`` convolved with the dose's input, in closed form:

- bolus ``D``: ``D h(tau)``;
- oral ``D`` with first-order absorption ``Ka``: ``D Ka sum_m c_m (exp(-lambda_m tau) -
  exp(-Ka tau)) / (Ka - lambda_m)`` (finite at ``Ka = lambda_m``, see :func:`pk.bateman`);
- infusion of ``D`` over ``T`` (rate ``R = D / T``): ``R sum_m c_m / lambda_m (1 - exp(-lambda_m
  min(tau, T))) exp(-lambda_m max(tau - T, 0))``.

Doses add by superposition. A steady-state dose (``Doses.ss`` 1, NONMEM's SS=1) at time ``s`` with
interval ``ii`` stands for the same dose given at ``s, s - ii, s - 2 ii, ...``: the earlier doses
add, for ``tau >= 0``, each exponential ``a exp(-r (tau + k ii))`` summed over ``k >= 1``, that is
``a exp(-r tau) / expm1(r ii)``. (Infusions need ``T <= ii``; before ``s`` a steady-state dose
adds nothing, as if the system were brought to steady state at ``s``.)

Two compartments, ``(Cl, V1, Q, V2)`` with ``k10 = Cl / V1``, ``k12 = Q / V1``, ``k21 = Q / V2``:
``alpha, beta`` are the roots of ``s^2 - (k10 + k12 + k21) s + k10 k21`` and
``c = ((alpha - k21), (k21 - beta)) / (V1 (alpha - beta))``. Any number of compartments: the
clearance matrix ``S`` (``S_11 = Cl + sum_j Q_j``, ``S_1j = S_j1 = -Q_j``, ``S_jj = Q_j``) gives
``dc/dt = -V^-1 S c``; with ``H = V^-1/2 S V^-1/2 = U diag(lambda) U^T`` (symmetric),
``c_m = U_1m^2 / V1``.
"""

import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, ArrayLike, Float

from twinjax.bayes.doses import INFUSION, ORAL, Doses
from twinjax.bayes.pk import bateman


def two_compartment_exponents(
    cl: Float[ArrayLike, ""], v1: Float[ArrayLike, ""], q: Float[ArrayLike, ""],
    v2: Float[ArrayLike, ""],
) -> tuple[Float[Array, " 2"], Float[Array, " 2"]]:  # fmt: skip
    """``(c, lambda)`` of the two-compartment unit-bolus response (``lambda = (alpha, beta)``)."""
    k10, k12, k21 = cl / v1, q / v1, q / v2
    total = k10 + k12 + k21
    disc = jnp.sqrt((k10 + k12 - k21) ** 2 + 4.0 * k12 * k21)  # = sqrt(total^2 - 4 k10 k21) > 0
    alpha = 0.5 * (total + disc)
    beta = k10 * k21 / alpha  # the product of the roots; stable when beta << alpha
    coef = jnp.stack([alpha - k21, k21 - beta]) / (v1 * disc)
    return coef, jnp.stack([alpha, beta])


def mammillary_exponents(
    cl: Float[ArrayLike, ""], volumes: Float[Array, " n"], intercompartmental: Float[Array, " n1"]
) -> tuple[Float[Array, " n"], Float[Array, " n"]]:
    """``(c, lambda)`` of an ``n``-compartment mammillary model (central volume first, one
    intercompartmental clearance per peripheral compartment), by a symmetric eigendecomposition."""
    q = jnp.asarray(intercompartmental)
    n = q.shape[0] + 1
    s = jnp.zeros((n, n)).at[0, 0].set(cl + q.sum())
    s = s.at[0, 1:].set(-q).at[1:, 0].set(-q)
    s = s.at[jnp.arange(1, n), jnp.arange(1, n)].set(q)
    root = jnp.sqrt(volumes)
    rates, u = jnp.linalg.eigh(s / (root[:, None] * root[None, :]))
    return u[0] ** 2 / volumes[0], rates


def _tail(rate, ii):
    """``sum_{k >= 1} exp(-rate k ii) = 1 / expm1(rate ii)`` (0 where there is no interval)."""
    ok = ii > 0
    return jnp.where(ok, 1.0 / jnp.expm1(rate * jnp.where(ok, ii, 1.0)), 0.0)


def polyexponential(
    t: Float[ArrayLike, " time"],
    doses: Doses,
    coef: Float[ArrayLike, " m"],
    rates: Float[ArrayLike, " m"],
    lKa: Float[ArrayLike, ""] | None = None,
) -> Float[Array, " time"]:
    """Concentration at ``t`` after ``doses`` for the unit-bolus response
    ``sum_m coef_m exp(-rates_m tau)`` (see the module for each route and steady state).

    Oral doses need ``lKa``; without it they count as boluses. ``doses.route`` None: every dose is
    oral.
    """
    t = jnp.asarray(t)
    times, amounts = jnp.asarray(doses.times), jnp.asarray(doses.amounts)
    c, lam = jnp.asarray(coef)[None, None, :], jnp.asarray(rates)[None, None, :]
    route = jnp.full(times.shape, ORAL) if doses.route is None else jnp.asarray(doses.route)
    duration = jnp.zeros(times.shape) if doses.duration is None else jnp.asarray(doses.duration)
    tau = t[:, None] - times[None, :]
    given = tau >= 0
    tau = jnp.where(given, tau, 0.0)[..., None]
    a, route = amounts[None, :, None], route[None, :, None]
    ss_on = doses.ss is not None
    ii = (
        jnp.asarray(doses.ii)[None, :, None] * (jnp.asarray(doses.ss)[None, :, None] > 0)
        if ss_on
        else 0.0
    )
    decay = jnp.exp(-lam * tau)
    per = a * c * decay * (1.0 + _tail(lam, ii))  # bolus (and its steady-state tail)
    if lKa is not None:
        ka = jnp.exp(lKa)
        oral = a * c * ka * bateman(tau, lam, ka)
        if ss_on:
            gap = ka - lam
            gap = jnp.where(jnp.abs(gap) < 1e-9, 1e-9, gap)
            oral += a * c * ka / gap * (decay * _tail(lam, ii) - jnp.exp(-ka * tau) * _tail(ka, ii))
        per = jnp.where(route == ORAL, oral, per)
    is_inf = route == INFUSION
    span = jnp.where(is_inf & (duration[None, :, None] > 0), duration[None, :, None], 1.0)
    inside = jnp.minimum(tau, span)
    rate_in = a / span * c / lam
    infusion = rate_in * -jnp.expm1(-lam * inside) * jnp.exp(-lam * (tau - inside))
    if ss_on:  # earlier infusions all ended (T <= ii): exp(-lam (tau - T)) decays
        infusion += (
            rate_in * -jnp.expm1(-lam * span) * jnp.exp(-lam * (tau - span)) * _tail(lam, ii)
        )
    per = jnp.where(is_inf, infusion, per)
    return jnp.sum(jnp.where(given[..., None], per, 0.0), axis=(-1, -2))


def two_compartment(
    t: Float[ArrayLike, " time"],
    doses: Doses,
    lCl: Float[ArrayLike, ""],
    lV1: Float[ArrayLike, ""],
    lQ: Float[ArrayLike, ""],
    lV2: Float[ArrayLike, ""],
    lKa: Float[ArrayLike, ""] | None = None,
) -> Float[Array, " time"]:
    """Two-compartment concentrations (log parameters; ``lKa`` for oral doses)."""
    coef, rates = two_compartment_exponents(jnp.exp(lCl), jnp.exp(lV1), jnp.exp(lQ), jnp.exp(lV2))
    return polyexponential(t, doses, coef, rates, lKa)


def pk2_iv_predict(t, theta: dict, doses: Doses) -> Float[Array, " time"]:
    """``(lCl, lV1, lQ, lV2)``: two compartments, boluses and infusions."""
    return two_compartment(t, doses, theta["lCl"], theta["lV1"], theta["lQ"], theta["lV2"])


def pk2_oral_predict(t, theta: dict, doses: Doses) -> Float[Array, " time"]:
    """``(lCl, lV1, lQ, lV2, lKa)``: two compartments, oral doses, boluses and infusions."""
    return two_compartment(
        t, doses, theta["lCl"], theta["lV1"], theta["lQ"], theta["lV2"], theta["lKa"]
    )


def pk3_iv_predict(t, theta: dict, doses: Doses) -> Float[Array, " time"]:
    """``(lCl, lV1, lQ2, lV2, lQ3, lV3)``: three compartments, boluses and infusions."""
    volumes = jnp.exp(jnp.stack([theta["lV1"], theta["lV2"], theta["lV3"]]))
    q = jnp.exp(jnp.stack([theta["lQ2"], theta["lQ3"]]))
    coef, rates = mammillary_exponents(jnp.exp(theta["lCl"]), volumes, q)
    return polyexponential(t, doses, coef, rates)


def compartment_derived(theta: dict) -> dict[str, np.ndarray]:
    """Derived quantities of two- or three-compartment draws (arrays of any shape): the
    steady-state volume ``V = V1 + V2 (+ V3)``, ``Cl``, the half-lives ``ln 2 / lambda`` of the
    exponents (``t_half_alpha``, ``t_half_beta`` (, ``t_half_gamma``), fastest first) and the
    AUC of a unit dose ``sum_m c_m / lambda_m = 1 / Cl``."""
    get = lambda k: np.exp(np.asarray(theta[k], dtype=np.float64))
    cl, v1 = get("lCl"), get("lV1")
    if "lV3" in theta:
        vols = np.stack([v1, get("lV2"), get("lV3")], -1)
        q = np.stack([get("lQ2"), get("lQ3")], -1)
        s = np.zeros((*cl.shape, 3, 3))
        s[..., 0, 0] = cl + q.sum(-1)
        for j in (1, 2):
            s[..., 0, j] = s[..., j, 0] = -q[..., j - 1]
            s[..., j, j] = q[..., j - 1]
        root = np.sqrt(vols)
        lam, u = np.linalg.eigh(s / (root[..., :, None] * root[..., None, :]))
        lam, coef = lam[..., ::-1], (u[..., 0, :] ** 2 / v1[..., None])[..., ::-1]
        names = ("alpha", "beta", "gamma")
    else:
        vols = np.stack([v1, get("lV2")], -1)
        k10, k12, k21 = cl / v1, get("lQ") / v1, get("lQ") / vols[..., 1]
        disc = np.sqrt((k10 + k12 - k21) ** 2 + 4.0 * k12 * k21)
        alpha = 0.5 * (k10 + k12 + k21 + disc)
        lam = np.stack([alpha, k10 * k21 / alpha], -1)
        coef = np.stack([alpha - k21, k21 - lam[..., 1]], -1) / (v1 * disc)[..., None]
        names = ("alpha", "beta")
    out = {"V": vols.sum(-1), "Cl": cl}
    out |= {f"t_half_{n}": np.log(2.0) / lam[..., j] for j, n in enumerate(names)}
    out["auc_unit_dose"] = np.sum(coef / lam, axis=-1)
    if "lKa" in theta:
        out["t_half_absorption"] = np.log(2.0) / get("lKa")
    return out
