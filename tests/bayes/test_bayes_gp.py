"""GP twins: exact marginal likelihood vs scipy, HSGP vs exact, vmapped cohort vs serial calls."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from scipy.stats import multivariate_normal

from twinjax.bayes.gp import (
    exact_log_marginal,
    exact_predict,
    fit_gp_twins,
    hsgp_log_marginal,
    hsgp_predict,
    hsgp_stats,
    predict_gp_twins,
    se_kernel,
)

X = jnp.linspace(-1.0, 1.0, 60)
H = jnp.log(jnp.array([1.2, 0.15, 0.3]))


def _series(seed, length=0.15, n=60):
    k1, k2, k3 = jax.random.split(jax.random.key(seed), 3)
    x = jnp.linspace(-1.0, 1.0, n)
    k = se_kernel(x, x, 1.0, length) + 1e-5 * jnp.eye(n)
    f = jnp.linalg.cholesky(k) @ jax.random.normal(k1, (n,))
    y = f + 0.2 * jax.random.normal(k2, (n,))
    return x, y, jax.random.uniform(k3, (n,)) < 0.75


def test_exact_marginal_matches_scipy_on_observed_points():
    x, y, mask = _series(0)
    amp, length, noise = np.exp(np.asarray(H))
    xo, yo = np.asarray(x)[np.asarray(mask)], np.asarray(y)[np.asarray(mask)]
    cov = np.asarray(se_kernel(xo, xo, amp, length)) + noise**2 * np.eye(len(xo))
    ref = multivariate_normal(np.zeros(len(xo)), cov).logpdf(yo)
    np.testing.assert_allclose(float(exact_log_marginal(x, y, mask, H)), ref, rtol=1e-4)


@pytest.mark.integration
def test_hsgp_converges_to_exact_gp():
    x, y, mask = _series(1)
    s = hsgp_stats(x, y, mask, ell=1.3, m=64)
    np.testing.assert_allclose(
        hsgp_log_marginal(s, H, ell=1.3, m=64), exact_log_marginal(x, y, mask, H), rtol=1e-3
    )
    me, ve = exact_predict(x, y, mask, H, X)
    mh, vh = hsgp_predict(s, H, X, ell=1.3, m=64)
    np.testing.assert_allclose(mh, me, atol=1e-3)
    np.testing.assert_allclose(vh, ve, atol=1e-3)
    # many basis functions: high frequencies underflow in the spectral density, still finite
    s2 = hsgp_stats(x, y, mask, ell=1.3, m=160)
    assert np.isfinite(float(hsgp_log_marginal(s2, H, ell=1.3, m=160)))


def test_cohort_fit_recovers_lengthscale_and_matches_serial_prediction():
    series = [_series(10 + i, length=0.1) for i in range(8)]
    x, y, mask = (jnp.stack(a) for a in zip(*series, strict=True))
    tw = fit_gp_twins(x, y, mask, method="hsgp", m=32, steps=60, lr=0.1)
    assert abs(float(tw.prior_loc[1]) - np.log(0.1)) < 0.4  # shared log-length near the truth
    mu, sd = predict_gp_twins(tw, x, y, mask, x, method="exact")
    for i in (0, 7):
        z = (y[i] - tw.mean[i]) / tw.sd[i]
        m1, v1 = exact_predict(x[i], z, mask[i], tw.hypers[i], x[i])
        np.testing.assert_allclose(mu[i], tw.mean[i] + tw.sd[i] * m1, rtol=1e-4, atol=1e-4)
        np.testing.assert_allclose(sd[i], tw.sd[i] * jnp.sqrt(v1), rtol=1e-4)
