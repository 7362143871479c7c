"""Two- and three-compartment PK against an ODE solve (scipy ``solve_ivp``), the eigendecomposition
against the two-compartment closed form, and steady-state doses against many repeated doses.

Tolerances: the closed forms run in float32 (relative rounding ~1e-7 per term, a few terms), the
ODE at rtol=atol=1e-10, so rtol 2e-4 / atol 1e-4 (concentrations of order 1-10) leaves room only
for float32 rounding, not for a wrong exponent or coefficient (those are off by >1%).
"""

import jax.numpy as jnp
import numpy as np
import pytest
from scipy.integrate import solve_ivp

from twinjax.bayes.doses import BOLUS, INFUSION, ORAL, Doses
from twinjax.bayes.pk_compartments import (
    mammillary_exponents,
    pk2_iv_predict,
    pk2_oral_predict,
    pk3_iv_predict,
    polyexponential,
    two_compartment_exponents,
)
from twinjax.bayes.pk_routes import pk_derived

CL, V1, Q, V2, KA = 2.0, 10.0, 3.0, 25.0, 1.2
Q3, V3 = 0.4, 60.0
THETA2 = {
    "lCl": np.log(CL),
    "lV1": np.log(V1),
    "lQ": np.log(Q),
    "lV2": np.log(V2),
    "lKa": np.log(KA),
}
THETA3 = {"lCl": np.log(CL), "lV1": np.log(V1), "lQ2": np.log(Q), "lV2": np.log(V2),
          "lQ3": np.log(Q3), "lV3": np.log(V3)}  # fmt: skip
DOSES = Doses(
    times=jnp.array([0.0, 4.0, 10.0, 0.0]),
    amounts=jnp.array([100.0, 80.0, 60.0, 0.0]),  # last: padding
    route=jnp.array([BOLUS, INFUSION, ORAL, BOLUS], dtype=jnp.float32),
    duration=jnp.array([0.0, 2.5, 0.0, 0.0]),
)


def _ode(t_eval, peripheral, doses=DOSES):
    """Amounts in gut, central and peripheral compartments; jumps for boluses and oral doses,
    a rate for infusions; returns the central concentration."""
    vols = [V1] + [v for _, v in peripheral]
    n = len(vols)
    times, amounts = np.asarray(doses.times), np.asarray(doses.amounts)
    route, dur = np.asarray(doses.route), np.asarray(doses.duration)

    def rhs(t, x):
        c = x[1:] / np.array(vols)
        dx = np.zeros(n + 1)
        dx[0] = -KA * x[0]
        inf = sum(a / d for s, a, r, d in zip(times, amounts, route, dur, strict=True)
                  if r == INFUSION and s <= t < s + d)  # fmt: skip
        dx[1] = KA * x[0] - CL * c[0] + inf
        for j, (q, _) in enumerate(peripheral, start=1):
            dx[1] -= q * (c[0] - c[j])
            dx[1 + j] = q * (c[0] - c[j])
        return dx

    edges = sorted({0.0, float(t_eval[-1]) + 1.0, *times.tolist(),
                    *(times + dur)[route == INFUSION].tolist()})  # fmt: skip
    x, out = np.zeros(n + 1), []
    for a, b in zip(edges[:-1], edges[1:], strict=True):
        for s, amt, r in zip(times, amounts, route, strict=True):
            if s == a and r != INFUSION:
                x[0 if r == ORAL else 1] += amt
        sol = solve_ivp(rhs, (a, b), x, dense_output=True, rtol=1e-10, atol=1e-10, max_step=0.1)
        sel = t_eval[(t_eval >= a) & (t_eval < b)]
        out.append(sol.sol(sel)[1] / V1 if len(sel) else np.zeros(0))
        x = sol.y[:, -1]
    return np.concatenate(out)


def test_two_compartments_match_ode():
    t = np.linspace(0.0, 30.0, 61)
    c = pk2_oral_predict(jnp.asarray(t), THETA2, DOSES)
    np.testing.assert_allclose(np.asarray(c), _ode(t, [(Q, V2)]), rtol=2e-4, atol=1e-4)
    iv = DOSES._replace(amounts=DOSES.amounts.at[2].set(0.0))
    c_iv = pk2_iv_predict(jnp.asarray(t), THETA2, iv)
    np.testing.assert_allclose(np.asarray(c_iv), _ode(t, [(Q, V2)], iv), rtol=2e-4, atol=1e-4)


def test_three_compartments_match_ode():
    t = np.linspace(0.0, 30.0, 61)
    iv = DOSES._replace(amounts=DOSES.amounts.at[2].set(0.0))
    c = pk3_iv_predict(jnp.asarray(t), THETA3, iv)
    np.testing.assert_allclose(
        np.asarray(c), _ode(t, [(Q, V2), (Q3, V3)], iv), rtol=2e-4, atol=1e-4
    )


def test_eigendecomposition_equals_closed_form_and_conserves_exposure():
    coef, rates = two_compartment_exponents(CL, V1, Q, V2)
    c_eig, r_eig = mammillary_exponents(CL, jnp.array([V1, V2]), jnp.array([Q]))
    order = np.argsort(-np.asarray(r_eig))
    np.testing.assert_allclose(np.asarray(rates), np.asarray(r_eig)[order], rtol=1e-5)
    np.testing.assert_allclose(np.asarray(coef), np.asarray(c_eig)[order], rtol=1e-5)
    # the unit-dose AUC sum(c / lambda) is 1 / Cl and h(0) = 1 / V1 whatever the compartments
    assert float(jnp.sum(coef / rates)) == pytest.approx(1.0 / CL, rel=1e-5)
    assert float(jnp.sum(coef)) == pytest.approx(1.0 / V1, rel=1e-5)


@pytest.mark.integration
@pytest.mark.parametrize("route", [BOLUS, ORAL, INFUSION])
@pytest.mark.parametrize("compartments", [1, 2])
def test_steady_state_is_the_limit_of_repeated_doses(route, compartments):
    """An SS dose at 0 with interval 12 equals 150 doses every 12 h given from -1788 (the earliest
    dose's residue is below exp(-beta 1788) ~ 1e-13 of a dose)."""
    ii, n = 12.0, 150
    t = jnp.linspace(0.0, 30.0, 31)
    ss = Doses(jnp.array([0.0]), jnp.array([100.0]), jnp.array([float(route)]),
               jnp.array([3.0 if route == INFUSION else 0.0]), jnp.array([1.0]), jnp.array([ii]))  # fmt: skip
    times = -ii * jnp.arange(n, dtype=jnp.float32)[::-1]
    many = Doses(times, jnp.full(n, 100.0), jnp.full(n, float(route)), jnp.full(n, ss.duration[0]))
    if compartments == 1:
        coef, rates = jnp.array([0.1]), jnp.array([0.15])
    else:
        coef, rates = two_compartment_exponents(CL, V1, Q, V2)
    lka = jnp.log(KA)
    got = polyexponential(t, ss, coef, rates, lka)
    ref = polyexponential(t, many, coef, rates, lka)
    np.testing.assert_allclose(np.asarray(got), np.asarray(ref), rtol=1e-4, atol=1e-5)
    # and not the single dose: the accumulated earlier doses add a visible amount
    assert float(jnp.min(got - polyexponential(t, ss._replace(ss=None), coef, rates, lka))) > 1e-2


def test_two_compartment_derived_quantities():
    d = pk_derived({k: np.array([v]) for k, v in THETA2.items()})
    coef, rates = two_compartment_exponents(CL, V1, Q, V2)
    assert d["V"][0] == pytest.approx(V1 + V2)
    assert d["t_half_alpha"][0] == pytest.approx(np.log(2) / float(rates[0]), rel=1e-5)
    assert d["t_half_beta"][0] == pytest.approx(np.log(2) / float(rates[1]), rel=1e-5)
    assert d["auc_unit_dose"][0] == pytest.approx(float(jnp.sum(coef / rates)), rel=1e-5)
