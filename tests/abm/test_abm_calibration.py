"""Relaxed simulator gradients vs finite differences; calibration recovers known rates."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from twinjax import abm
from twinjax.abm.calibration import fit_gradient, interval, observed_counts, posterior
from twinjax.abm.relaxed import relaxed_bernoulli, simulate_relaxed


@pytest.mark.integration
@pytest.mark.parametrize("network", [abm.WellMixed(), abm.RandomNet(10)])
def test_relaxed_gradient_matches_finite_differences(network):
    beta0 = 0.4 if isinstance(network, abm.WellMixed) else 0.05
    weights = jnp.linspace(1.0, 2.0, 20)[:, None] * jnp.array([1.0, 0.5])

    @jax.jit
    def f(log_params):
        beta, gamma = jnp.exp(log_params)
        out = simulate_relaxed(
            jax.random.key(0),
            beta,
            gamma,
            n_agents=200,
            n_steps=20,
            init_prev=0.05,
            network=network,
            tau=0.5,
        )
        return jnp.sum(out * weights)

    x = jnp.log(jnp.array([beta0, 0.2]))
    grad = np.asarray(jax.grad(f)(x))
    eps = 1e-2
    fd = np.array([(f(x + eps * e) - f(x - eps * e)) / (2 * eps) for e in jnp.eye(2)])
    np.testing.assert_allclose(grad, fd, rtol=3e-2, atol=1e-3)
    assert np.all(np.abs(grad) > 1e-2)  # the rates do move the outcome


def test_straight_through_forward_is_the_hard_draw():
    u = jax.random.uniform(jax.random.key(1), (10_000,))
    p = jnp.full_like(u, 0.3)
    hard = relaxed_bernoulli(p, u, 0.5, straight_through=True)
    np.testing.assert_allclose(np.asarray(hard), np.asarray(u > 0.7, np.float32), atol=1e-6)
    # the expected draw's gradient: d/dp sum(draw) = n with the probability surrogate
    g = jax.grad(
        lambda q: relaxed_bernoulli(q, u, 0.5, straight_through=True, surrogate="probability").sum()
    )(p)
    np.testing.assert_allclose(np.asarray(g), 1.0)


def _synthetic(n, n_steps, beta, gamma, network):
    key = jax.random.key(11)
    agents = abm.init_agents(jax.random.fold_in(key, 1), n, 0.01)
    layers = (abm.Layer(network, beta),)
    _, out = abm.simulate(key, agents, abm.SEIRParams(gamma), layers, n_steps)
    return observed_counts(out, n)


@pytest.mark.integration
def test_posterior_recovers_rates_with_covering_90_interval():
    beta, gamma = 0.05, 0.2
    net = abm.RandomNet(10)
    obs = _synthetic(5_000, 40, beta, gamma, net)
    post = posterior(jax.random.key(2), obs, network=net, num_warmup=100, num_samples=200)
    for name, truth in [("beta", beta), ("gamma", gamma)]:
        lo, hi = interval(post[name])
        assert lo <= truth <= hi, (name, lo, hi)
        assert abs(float(jnp.median(post[name])) / truth - 1) < 0.1


@pytest.mark.integration
def test_gradient_fit_moves_towards_truth():
    beta, gamma = 0.4, 0.2
    obs = _synthetic(2_000, 50, beta, gamma, abm.WellMixed())
    fit = fit_gradient(
        jax.random.key(3), obs, init_prev=0.01, init=(0.2, 0.1), n_iterations=60, n_keys=2
    )
    assert float(fit.loss_history[-10:].mean()) < 0.5 * float(fit.loss_history[:3].mean())
    assert abs(fit.beta / beta - 1) < 0.25 and abs(fit.gamma / gamma - 1) < 0.25, fit[:2]
