"""Engine: networks, layer pressures against references, well-mixed SIR final size (closed form)."""

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from twinjax import abm
from twinjax.abm.contacts import edge_log_escape, random_net_escape


def test_generators_have_requested_mean_degree():
    key = jax.random.key(0)
    n = 4000
    for edges, target in [
        (abm.erdos_renyi(key, n, 6.0), 6.0),
        (abm.fixed_degree(key, n, 6), 6.0),
        (abm.small_world(key, n, 6, 0.1), 6.0),
        (abm.scale_free(key, n, 6.0), 6.0),
    ]:
        deg = np.asarray(abm.degrees(edges, n))
        assert abs(deg.mean() - target) < 0.1, (deg.mean(), target)
    # fixed degree: almost every agent exactly 6 (self-pairs dropped)
    assert np.mean(np.asarray(abm.degrees(abm.fixed_degree(key, n, 6), n)) == 6) > 0.99
    # scale free: heavy tail
    assert np.asarray(abm.degrees(abm.scale_free(key, n, 6.0), n)).max() > 60


def test_household_network_is_complete_inside_households():
    key = jax.random.key(1)
    probs = jnp.array([0.3, 0.3, 0.2, 0.2])
    hh = np.asarray(abm.household_ids(key, 2000, probs))
    deg = np.asarray(abm.degrees(abm.household(key, 2000, probs), 2000))
    sizes = np.bincount(hh)[hh]
    np.testing.assert_array_equal(deg, sizes - 1)
    assert np.all(sizes <= 4)
    assert abs(np.bincount(hh)[:-1].mean() - 2.3) < 0.15  # mean size sum((s+1) p_s)


def test_edge_log_escape_matches_dense_reference():
    key = jax.random.key(2)
    n = 300
    edges = abm.erdos_renyi(key, n, 8.0)
    k1, k2 = jax.random.split(key)
    inf = (jax.random.uniform(k1, (n,)) < 0.3) * jax.random.uniform(k2, (n,))
    sus = jax.random.uniform(k1, (n,))
    p = 0.2
    got = np.asarray(edge_log_escape(edges, jnp.float32(p), inf, sus))
    s, d, w = (np.asarray(a, np.float64) for a in edges)
    s, d = s.astype(int), d.astype(int)
    inf, sus = np.asarray(inf, np.float64), np.asarray(sus, np.float64)
    want = np.zeros(n)
    np.add.at(want, d, w * np.log1p(-p * inf[s] * sus[d]))
    np.add.at(want, s, w * np.log1p(-p * inf[d] * sus[s]))
    np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-6)


def test_random_net_matches_edge_level_infection_probability():
    """P(infected) of a susceptible = 1 - (1 - p I/N)^k (1 - p/N)^(k I) with k = n_contacts/2."""
    n, n_inf, k, p = 20_000, 2_000, 5, 0.1
    inf = jnp.zeros(n).at[:n_inf].set(1.0)
    sus = 1.0 - inf

    def frac(key):
        esc = random_net_escape(key, abm.RandomNet(2 * k), jnp.float32(p), inf, sus, n_total=n)
        u = jax.random.uniform(jax.random.fold_in(key, 1), (n,))
        return jnp.mean((u[n_inf:] < 1.0 - esc[n_inf:]).astype(jnp.float32))

    got = float(jnp.mean(jax.jit(jax.vmap(frac))(jax.random.split(jax.random.key(3), 8))))
    want = 1 - (1 - p * n_inf / n) ** k * (1 - p / n) ** (k * n_inf)
    # 8 x 18000 Bernoulli(~0.095): standard error ~ 8e-4
    assert abs(got - want) < 2.5e-3, (got, want)


@pytest.mark.integration
@pytest.mark.parametrize("r0", [1.5, 2.0, 3.0])
def test_well_mixed_sir_final_size_matches_lambert_w(r0):
    n, gamma, dt, n_seeds = 100_000, 1.0, 0.2, 4
    beta = r0 * math.expm1(gamma * dt) / dt  # discrete-time R0 = beta dt E[infectious steps]
    assert abs(abm.well_mixed_r0(beta, gamma, dt) - r0) < 1e-9

    @jax.jit
    @jax.vmap
    def run(key):
        agents = abm.init_agents(jax.random.fold_in(key, 1), n, 2e-4)
        layers = (abm.Layer(abm.WellMixed(), beta),)
        state, _ = abm.simulate(key, agents, abm.SEIRParams(gamma), layers, 250, dt=dt)
        return abm.attack_rate(state)

    sizes = run(jax.random.split(jax.random.key(int(r0 * 10)), n_seeds))
    assert abs(float(sizes.mean()) - abm.final_size(r0)) < 0.01


def test_final_size_solves_the_equation():
    for r0 in [1.5, 2.0, 3.0]:
        r = abm.final_size(r0)
        assert 0 < r < 1 and abs(r - (1 - math.exp(-r0 * r))) < 1e-12
    assert abm.final_size(0.9) == 0.0
