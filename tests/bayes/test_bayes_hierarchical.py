"""Hierarchical structure (random effects, LKJ, covariates), growth models, SVI subsampling."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from twinjax.bayes import (
    HierarchicalSpec,
    TwinData,
    hierarchical_model,
    individual_params,
    linear_predict,
    polynomial_names,
    polynomial_predict,
    population_draws,
    run_svi,
    svi_draws,
)


def test_individual_params_match_manual_formula():
    spec = HierarchicalSpec(
        predict=linear_predict,
        params=("intercept", "slope"),
        correlated=True,
        covariate_effects=(("slope", "wt"),),
    )
    mu, omega, beta = jnp.array([1.0, -0.5]), jnp.array([0.3, 2.0]), jnp.array([0.7])
    chol = jnp.linalg.cholesky(jnp.array([[1.0, 0.6], [0.6, 1.0]]))
    z = jax.random.normal(jax.random.key(0), (5, 2))
    cov = jnp.arange(5.0)[:, None]
    theta = individual_params(spec, mu, z, omega, beta, cov, chol, ("wt",))
    eta = np.asarray(z) @ (np.diag(omega) @ np.asarray(chol)).T
    ref = np.asarray(mu) + eta
    ref[:, 1] += 0.7 * np.arange(5.0)
    np.testing.assert_allclose(theta, ref, rtol=1e-6)


def test_polynomial_growth_matches_numpy():
    t = jnp.linspace(0.0, 3.0, 7)
    theta = dict(zip(polynomial_names(2), (1.0, -2.0, 0.5), strict=True))
    np.testing.assert_allclose(
        polynomial_predict(2)(t, theta), 1.0 - 2.0 * t + 0.5 * t**2, rtol=1e-6
    )


def test_spec_rejects_unknown_parameters():
    with pytest.raises(ValueError, match="not in params"):
        HierarchicalSpec(predict=linear_predict, params=("intercept",), random=("slope",))
    # TypeError from the Literal annotation under the test-time type checker, else ValueError
    with pytest.raises((TypeError, ValueError), match="poisson"):
        HierarchicalSpec(predict=linear_predict, params=("a",), error_model="poisson")


def _growth_cohort(n=40, t=8, seed=0):
    rng = np.random.default_rng(seed)
    a, b = 2.0 + 0.5 * rng.normal(size=n), 0.8 + 0.2 * rng.normal(size=n)
    times = np.tile(np.linspace(0.0, 3.0, t), (n, 1))
    y = a[:, None] + b[:, None] * times + 0.1 * rng.normal(size=(n, t))
    return TwinData(times, y, np.ones((n, t), bool), None, np.zeros((n, 0)))


@pytest.mark.integration
def test_svi_with_plate_subsampling_recovers_population():
    data = _growth_cohort()
    spec = HierarchicalSpec(predict=linear_predict, params=("intercept", "slope"))
    fit = run_svi(
        hierarchical_model, jax.random.key(0), spec, data, steps=2500, lr=0.02, subsample_size=10
    )
    draws = population_draws(spec, svi_draws(fit, jax.random.key(1), spec, data, subsample_size=10))
    assert abs(draws["intercept"].mean() - 2.0) < 0.25
    assert abs(draws["slope"].mean() - 0.8) < 0.1
    assert abs(draws["sigma_add"].mean() - 0.1) < 0.05
    with pytest.raises(ValueError, match="cannot subsample"):
        run_svi(
            hierarchical_model, jax.random.key(0), spec, data, guide="lowrank", subsample_size=5
        )
