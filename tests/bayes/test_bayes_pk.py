"""PK closed forms against numerical ODE integration (scipy solve_ivp, tight tolerances)."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from scipy.integrate import solve_ivp

from twinjax.bayes import (
    iv_bolus_one_compartment,
    oral_one_compartment,
    oral_steady_state,
)


def _ode_oral(t_obs, dose_times, amounts, ke, ka, v, route="oral"):
    """Gut/central amounts integrated piecewise between doses; returns central concentration."""
    events = sorted(zip(dose_times, amounts, strict=True))
    state = np.zeros(2)  # gut, central
    t_now, out = 0.0, {}

    def rhs(_, s):
        gut, cen = s
        return [-ka * gut, ka * gut - ke * cen]

    grid = np.unique(np.concatenate([t_obs, [d for d, _ in events]]))
    for t_next in grid:
        if t_next > t_now:
            sol = solve_ivp(rhs, (t_now, t_next), state, rtol=1e-10, atol=1e-12, method="LSODA")
            state = sol.y[:, -1]
            t_now = t_next
        for d, a in events:
            if d == t_now:
                state[0 if route == "oral" else 1] += a
        events = [(d, a) for d, a in events if d != t_now]
        out[t_next] = state[1] / v
    return np.array([out[t] for t in t_obs])


# second: Ka == Ke (the 0/0 limit); third: Ka << Ke (flip-flop kinetics)
@pytest.mark.parametrize("lka", [0.5, np.log(0.1), np.log(0.02)])
def test_oral_multiple_doses_match_ode(lka):
    lke, lcl = np.log(0.1), np.log(0.04)
    ke, ka, cl = np.exp(lke), np.exp(lka), np.exp(lcl)
    dose_times, amounts = np.array([0.0, 7.5, 20.0, 0.0]), np.array([4.0, 2.5, 3.0, 0.0])
    t = np.linspace(0.0, 40.0, 81)
    got = oral_one_compartment(jnp.array(t), dose_times, amounts, lke, lka, lcl)
    ref = _ode_oral(t, dose_times[:3], amounts[:3], ke, ka, cl / ke)
    np.testing.assert_allclose(np.asarray(got), ref, rtol=2e-5, atol=1e-5)


def test_iv_bolus_matches_ode():
    lke, lcl = np.log(0.2), np.log(1.5)
    ke, cl = np.exp(lke), np.exp(lcl)
    dose_times, amounts = np.array([1.0, 5.0]), np.array([100.0, 50.0])
    t = np.linspace(0.0, 24.0, 49)
    got = iv_bolus_one_compartment(jnp.array(t), dose_times, amounts, lke, lcl)
    ref = _ode_oral(t, dose_times, amounts, ke, 1.0, cl / ke, route="iv")
    np.testing.assert_allclose(np.asarray(got), ref, rtol=2e-5, atol=1e-5)
    assert float(got[0]) == 0.0  # nothing before the first dose


def test_steady_state_is_limit_of_superposition():
    lke, lka, lcl, tau = np.log(0.09), np.log(1.6), np.log(0.04), 12.0
    n = 60  # 60 doses: exp(-ke * 720) is negligible
    dose_times = tau * np.arange(n)
    t_last = jnp.linspace(0.0, tau, 25, endpoint=False)
    sup = oral_one_compartment(t_last + dose_times[-1], dose_times, np.full(n, 4.0), lke, lka, lcl)
    ss = oral_steady_state(t_last, 4.0, tau, lke, lka, lcl)
    np.testing.assert_allclose(np.asarray(ss), np.asarray(sup), rtol=1e-4)


def test_gradients_finite_at_dose_time_and_equal_rates():
    f = lambda p: oral_one_compartment(jnp.array([0.0, 1.0]), jnp.zeros(1), jnp.ones(1), *p).sum()
    g = jax.grad(f)(jnp.array([np.log(0.5), np.log(0.5), 0.0]))
    assert np.all(np.isfinite(np.asarray(g)))


def test_extreme_rates_stay_finite():
    t = jnp.linspace(0.0, 48.0, 9)
    for lke, lka in [(2.0, -2.0), (-2.0, 2.0), (3.0, -4.0)]:
        c = oral_one_compartment(t, jnp.zeros(1), jnp.ones(1), lke, lka, -3.0)
        assert np.all(np.isfinite(np.asarray(c))) and np.all(np.asarray(c) >= 0)
