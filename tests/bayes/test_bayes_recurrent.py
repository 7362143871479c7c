"""Bayesian recurrent twins: the model's log joint is the personal MAP objective, a point-mass
posterior predicts exactly like the MAP twin, and the mixture calibration tools are exact."""

import jax
import jax.numpy as jnp
import numpy as np
import numpyro
import numpyro.distributions as dist
import pytest
from numpyro.infer.util import log_density

from twinjax.bayes import mixture as mx
from twinjax.bayes import recurrent as br
from twinjax.data import prepare, synthetic_cohort
from twinjax.eval.score import Forecast, pit
from twinjax.twins import TwinSpec, cohort_predictions, init_params, window_loss

LENGTH, N_WINDOWS = 8, 3


@pytest.fixture(scope="module")
def tiny():
    cohort = synthetic_cohort(jax.random.key(0), n_individuals=3, n_steps=72)
    arrays, _ = prepare(cohort)
    spec = TwinSpec.for_cohort(cohort, hidden=4, attention_dim=3)
    pop = init_params(jax.random.key(1), spec)
    noise = lambda x, k: x + 0.05 * jax.random.normal(k, (3,) + x.shape)
    leaves = jax.tree.leaves(pop)
    keys = jax.random.split(jax.random.key(2), len(leaves))
    personal = jax.tree.unflatten(
        jax.tree.structure(pop), [noise(x, k) for x, k in zip(leaves, keys, strict=True)]
    )
    return arrays, spec, pop, personal


def test_sites_round_trip(tiny):
    _, _, pop, _ = tiny
    sites = br.to_sites(pop)
    assert all(name.startswith("theta/") for name in sites)
    back = br.from_sites(sites, pop)
    jax.tree.map(np.testing.assert_array_equal, back, pop)


class _KeySpy(numpyro.primitives.Messenger):
    def __init__(self, fn):
        self.keys = []
        super().__init__(fn)

    def postprocess_message(self, msg):
        if msg["type"] == "prng_key":
            self.keys.append(msg["value"])


@pytest.mark.integration
@pytest.mark.parametrize(
    "layers",
    [pytest.param(None, marks=pytest.mark.slow), ("mean", "scale")],  # all layers: slow compile
)
def test_log_joint_is_the_personal_map_objective(tiny, layers):
    """log p(theta, data) = sum_i [log N(theta_i; theta_pop, tau) - n_i * window NLL_i] over the
    Bayesian layers, the others fixed: with every layer random and tau = 1/sqrt(prior_strength)
    its mode is fit_personal's MAP twin (same windows, same loss)."""
    arrays, spec, pop, personal = tiny
    tau = 0.2
    fixed = jax.tree.map(lambda x: x[::-1], personal)  # other values for the fixed layers
    theta = {k: v for k, v in br.to_sites(personal).items() if br.is_bayesian(k, layers)}
    params = {**theta, **{f"{k}_prior_scale": tau for k in theta}}
    kw = dict(spec=spec, prior_sd=tau, length=LENGTH, n_windows=N_WINDOWS, layers=layers)

    @jax.jit
    def joint(params):
        model = _KeySpy(numpyro.handlers.seed(br.personal_twin_model, jax.random.key(3)))
        logp, _ = log_density(model, (arrays, pop, fixed), kw, params)
        (key,) = model.keys
        return logp, key

    got, key = joint(params)
    keys = jax.random.split(key, 3)
    pop_sites = br.to_sites(pop)
    prior = sum(jnp.sum(dist.Normal(pop_sites[k], tau).log_prob(x)) for k, x in theta.items())
    full = br.from_sites({**br.to_sites(fixed), **theta}, pop)
    lik = 0.0
    for i in range(3):
        theta_i = jax.tree.map(lambda x, i=i: x[i], full)
        nll = window_loss(theta_i, spec, keys[i], arrays.series.at(i), arrays.train[i],
                          length=LENGTH, n_windows=N_WINDOWS)  # fmt: skip
        n_obs = np.sum(np.asarray(arrays.series.mask[i]) & np.asarray(arrays.train[i])[:, None])
        lik = lik - n_obs * nll
    np.testing.assert_allclose(got, prior + lik, rtol=1e-5)


@pytest.mark.integration
def test_point_mass_posterior_predicts_like_the_map_twin(tiny, tmp_path):
    """Bayesian head, cell and attention fixed at the MAP: with the posterior SDs at ~0 every
    draw is the MAP twin, so the predictive mixture's components are its predictions."""
    arrays, spec, pop, personal = tiny
    fit = br.fit_bayesian_twins(
        jax.random.key(4), spec, arrays, pop, personal, prior_sd=0.2, length=LENGTH,
        n_windows=N_WINDOWS, steps=3, lr=1e-3, scale_lr=1e-2, init_scale=0.01,
        layers=("mean", "scale"), checkpoint_dir=tmp_path / "ckpt", progress=False,
    )  # fmt: skip
    assert fit.losses.shape == (3,) and np.all(np.isfinite(fit.losses))
    assert {k for k in fit.params if k.endswith("_auto_loc")} == {
        f"{k}_auto_loc" for k in br.to_sites(pop) if k.split("/")[1] in ("mean", "scale")
    }
    point = {
        k: (v if not k.endswith("_auto_scale") else jnp.full_like(v, 1e-9))
        for k, v in fit.params.items()
    }
    sites = br.to_sites(personal)
    point.update({k: sites[k.removesuffix("_auto_loc")] for k in point if k.endswith("_auto_loc")})
    mix = br.predictive_mixture(
        fit._replace(params=point), spec, arrays, arrays.test,
        key=jax.random.key(5), num_samples=2, history=LENGTH - 1,
    )  # fmt: skip
    mean, scale, t, _ = cohort_predictions(personal, spec, arrays, arrays.test, history=LENGTH - 1)
    for s in range(2):
        np.testing.assert_allclose(mix.mean[s], mean, atol=1e-5)
        np.testing.assert_allclose(mix.scale[s], scale, atol=1e-5)
    np.testing.assert_array_equal(mix.t, t)


def _toy_mixture(n=40_000, spread=1.0, truth_sd=2.0):
    k1, k2, k3 = jax.random.split(jax.random.key(6), 3)
    mean = 0.6 * jax.random.normal(k1, (16, n, 1))
    scale = jnp.full((16, n, 1), 0.8)
    y = truth_sd * jax.random.normal(k3, (n, 1))
    return np.asarray(mean) * spread, np.asarray(scale) * spread, np.asarray(y)


def test_mixture_pit_matches_sampled_pit():
    mean, scale, y = _toy_mixture(n=2000)
    exact = mx.mixture_pit(mean, scale, y)
    draws = mx.mixture_samples(jax.random.key(7), mean, scale, 256)
    fc = Forecast(mean=draws.mean(0), draws=draws, y=y, mask=np.ones(y.shape, bool))
    sampled = pit(fc)
    # 4096 draws per point: Monte Carlo SD of a PIT value <= 0.5 / 64 ~ 0.008
    assert np.max(np.abs(exact - sampled)) < 0.04


@pytest.mark.integration
def test_spread_factor_recovers_a_known_miscalibration():
    mean, scale, y = _toy_mixture()  # mixture variance ~ 0.64 + 0.36 = 1; truth variance 4
    observed = np.ones(y.shape, bool)
    m, var = mx.mixture_moments(mean, scale)
    expected = np.sqrt(np.mean((y - m) ** 2 / var))  # ~2 (the per-point components differ slightly)
    factor = mx.spread_factor(mean, scale, y, observed)
    np.testing.assert_allclose(factor, expected, rtol=1e-4)
    assert abs(factor[0] - 2.0) < 0.1
    c_mean, c_scale = mx.rescale_spread(mean, scale, factor)
    before = mx.mixture_calibration(jax.random.key(8), mean, scale, y, observed)
    after = mx.mixture_calibration(jax.random.key(8), c_mean, c_scale, y, observed)
    assert before["coverage_90"] < 0.65  # a 2x too narrow predictive covers ~59%
    # a recalibrated Gaussian-like mixture covers 90% within sampling error (SD 0.0015)
    assert abs(after["coverage_90"] - 0.9) < 0.02
    assert after["crps"] < before["crps"]
