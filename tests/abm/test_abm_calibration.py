"""Relaxed simulator gradients vs finite differences; calibration recovers known rates."""

import warnings

import jax
import jax.numpy as jnp
import numpy as np
import numpyro
import pytest

from twinjax import abm
from twinjax.abm.calibration import (
    fit_gradient,
    inference_labels,
    interval,
    observed_counts,
    posterior_mcmc,
    predictive_counts,
)
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
def test_posterior_recovers_rates_with_covering_90_interval(tmp_path):
    beta, gamma = 0.05, 0.2
    net = abm.RandomNet(10)
    obs = _synthetic(5_000, 40, beta, gamma, net)
    mcmc = posterior_mcmc(jax.random.key(2), obs, network=net, num_warmup=100, num_samples=200)
    post = mcmc.get_samples()
    for name, truth in [("beta", beta), ("gamma", gamma)]:
        lo, hi = interval(post[name])
        assert lo <= truth <= hi, (name, lo, hi)
        assert abs(float(jnp.median(post[name])) / truth - 1) < 0.1
    # the same fit as experiment=abm_epidemic writes it (posterior.nc), read back by ArviZ
    import arviz as az

    from twinjax.bayes.idata import mcmc_inference_data

    pp = predictive_counts(jax.random.key(3), post, obs, network=net)
    idata = mcmc_inference_data(mcmc, posterior_predictive=pp, **inference_labels(obs))
    idata.to_netcdf(str(tmp_path / "posterior.nc"))
    idata = az.from_netcdf(tmp_path / "posterior.nc")
    assert {"posterior", "sample_stats", "log_likelihood", "posterior_predictive",
            "observed_data", "constant_data"} <= set(idata.groups())  # fmt: skip
    assert {"energy", "tree_depth", "step_size", "diverging"} <= set(idata.sample_stats)
    assert idata.log_likelihood["new"].dims == ("chain", "draw", "day")
    assert idata.log_likelihood["rec"].shape == (1, 200, 39)  # no recoveries on day 0
    np.testing.assert_array_equal(idata.observed_data["new"].values, np.asarray(obs.new))
    # the pointwise log-likelihood is the model's, by day: numpyro's sum of it per draw
    total = numpyro.infer.util.log_likelihood(mcmc.sampler.model, post, obs, net, 1.0)
    np.testing.assert_allclose(idata.log_likelihood["new"].values[0].sum(-1),
                               np.asarray(total["new"]).sum(-1), rtol=1e-5)  # fmt: skip
    # one-step predictive draws of new infections scatter around the observed counts
    pp = idata.posterior_predictive["new"].values[0]
    assert abs(pp.mean() / np.asarray(obs.new).mean() - 1) < 0.1
    with warnings.catch_warnings():  # a Pareto k or two over ArviZ's threshold at 200 draws
        warnings.simplefilter("ignore", UserWarning)
        assert np.isfinite(az.loo(idata, var_name="new").elpd_loo)


@pytest.mark.integration
def test_gradient_fit_moves_towards_truth():
    beta, gamma = 0.4, 0.2
    obs = _synthetic(2_000, 50, beta, gamma, abm.WellMixed())
    fit = fit_gradient(
        jax.random.key(3), obs, init_prev=0.01, init=(0.2, 0.1), n_iterations=60, n_keys=2
    )
    assert float(fit.loss_history[-10:].mean()) < 0.5 * float(fit.loss_history[:3].mean())
    assert abs(fit.beta / beta - 1) < 0.25 and abs(fit.gamma / gamma - 1) < 0.25, fit[:2]
