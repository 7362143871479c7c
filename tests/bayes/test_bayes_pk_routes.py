"""Mixed-route one-compartment PK against an ODE solve and the single-route closed forms."""

import jax.numpy as jnp
import numpy as np
from scipy.integrate import solve_ivp

from twinjax.bayes.doses import BOLUS, INFUSION, ORAL, Doses
from twinjax.bayes.pk import iv_bolus_one_compartment, oral_one_compartment
from twinjax.bayes.pk_routes import (
    iv_cl_v_predict,
    one_compartment,
    oral_cl_v_ka_predict,
    pk_derived,
)

LCL, LV, LKA = np.log(2.0), np.log(20.0), np.log(1.5)
DOSES = Doses(
    times=jnp.array([0.0, 6.0, 12.0, 0.0]),
    amounts=jnp.array([100.0, 80.0, 60.0, 0.0]),  # last: padding
    route=jnp.array([BOLUS, ORAL, INFUSION, BOLUS], dtype=jnp.float32),
    duration=jnp.array([0.0, 0.0, 3.0, 0.0]),
)


def _ode(t_eval):
    """Gut and central amounts; boluses and oral doses as jumps, the infusion as a rate."""
    cl, v, ka = np.exp(LCL), np.exp(LV), np.exp(LKA)

    def rhs(t, x):
        rate = 20.0 if 12.0 <= t < 15.0 else 0.0
        return [-ka * x[0], ka * x[0] - cl / v * x[1] + rate]

    x, out, edges = np.array([0.0, 100.0]), [], [0.0, 6.0, 12.0, 15.0, 30.0]
    for a, b in zip(edges[:-1], edges[1:], strict=True):
        if a == 6.0:
            x = x + [80.0, 0.0]
        sel = t_eval[(t_eval >= a) & (t_eval < b)]
        sol = solve_ivp(rhs, (a, b), x, t_eval=sel, rtol=1e-10, atol=1e-10, max_step=0.05)
        out.append(sol.y[1] / v)
        x = (
            sol.y[:, -1]
            if len(sel) and sel[-1] == b
            else solve_ivp(rhs, (a, b), x, rtol=1e-10, atol=1e-10, max_step=0.05).y[:, -1]
        )
    return np.concatenate(out)


def test_mixed_routes_match_ode():
    t = np.linspace(0.0, 29.0, 59)
    c = oral_cl_v_ka_predict(jnp.asarray(t), {"lCl": LCL, "lV": LV, "lKa": LKA}, DOSES)
    np.testing.assert_allclose(np.asarray(c), _ode(t), rtol=2e-4, atol=1e-4)


def test_single_routes_equal_the_closed_forms():
    t = jnp.linspace(0.0, 24.0, 25)
    bolus = DOSES._replace(route=jnp.zeros(4), duration=jnp.zeros(4))
    ref = iv_bolus_one_compartment(t, bolus.times, bolus.amounts, LCL - LV, LCL)
    np.testing.assert_allclose(iv_cl_v_predict(t, {"lCl": LCL, "lV": LV}, bolus), ref, rtol=1e-6)
    oral = Doses(DOSES.times, DOSES.amounts)  # route None: every dose oral
    ref = oral_one_compartment(t, oral.times, oral.amounts, LCL - LV, LKA, LCL)
    got = one_compartment(t, oral, LCL - LV, LCL, LKA)
    assert np.array_equal(np.asarray(got), np.asarray(ref))


def test_derived_volume_and_half_life():
    d = pk_derived({"lCl": np.array(LCL), "lV": np.array(LV)})
    assert np.isclose(d["V"], 20.0) and np.isclose(d["t_half"], np.log(2) * 20.0 / 2.0)
    d2 = pk_derived({"lKe": np.array(LCL - LV), "lCl": np.array(LCL), "lKa": np.array(LKA)})
    assert np.isclose(d2["V"], 20.0) and np.isclose(d2["t_half_absorption"], np.log(2) / 1.5)
