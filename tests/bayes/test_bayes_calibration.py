"""Calibration metrics against closed forms (Gaussian CRPS, PIT, coverage) with stated tolerances."""

import jax
import jax.numpy as jnp
import numpy as np

from twinjax.bayes import (
    calibration_summary,
    coverage,
    crps_gaussian,
    crps_samples,
    gaussian_coverage,
    pit_ks,
    pit_samples,
)


def test_crps_samples_matches_gaussian_closed_form():
    draws = 1.5 + 2.0 * jax.random.normal(jax.random.key(0), (20000, 6))
    y = jnp.array([-3.0, 0.0, 1.5, 2.0, 4.0, 9.0])
    np.testing.assert_allclose(crps_samples(draws, y), crps_gaussian(1.5, 2.0, y), rtol=0.02)


def test_crps_samples_matches_pairwise_definition():
    draws = jax.random.normal(jax.random.key(1), (50, 3))
    y = jnp.array([0.3, -1.0, 2.0])
    first = jnp.mean(jnp.abs(draws - y), axis=0)
    pair = jnp.mean(jnp.abs(draws[:, None] - draws[None, :]), axis=(0, 1))
    np.testing.assert_allclose(crps_samples(draws, y), first - 0.5 * pair, rtol=1e-5)


def test_calibrated_forecast_has_nominal_coverage_and_uniform_pit():
    k1, k2 = jax.random.split(jax.random.key(2))
    y = jax.random.normal(k1, (4000,))
    draws = jax.random.normal(k2, (500, 4000))
    assert abs(float(coverage(draws, y, level=0.9)) - 0.9) < 0.02
    assert abs(float(gaussian_coverage(0.0, 1.0, y, level=0.5)) - 0.5) < 0.03
    assert pit_ks(np.asarray(pit_samples(draws, y))) < 0.03
    # overconfident forecaster: coverage well below nominal
    assert float(coverage(0.5 * draws, y, level=0.9)) < 0.7


def test_summary_respects_mask():
    draws = jnp.zeros((10, 4)) + jnp.arange(10.0)[:, None]
    y = jnp.array([4.0, 100.0, 4.0, 100.0])
    s = calibration_summary(draws, y, jnp.array([True, False, True, False]))
    assert s["coverage_90"] == 1.0 and s["n_points"] == 2
