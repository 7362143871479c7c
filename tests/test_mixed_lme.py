"""The linear mixed model (twinjax.eval.mixed) against closed forms and a dense second method.

- balanced one-way random intercept: REML has the ANOVA closed form (sigma^2 = MSW,
  D = (MSB - MSW) / T when positive; Searle, Casella and McCulloch 1992, ch. 3);
- fixed effects and BLUPs: Henderson's mixed-model equations (a second closed form);
- ML: the profiled maximum is the dense multivariate-normal log-likelihood of the stacked data
  (scipy) at the fitted values, and no nearby parameter value does better;
- forecasts: the prediction-error variance equals ``Var(y* - c^T y)`` computed from the joint
  covariance, with ``c`` the forecast's linear map of the data found column by column.

Tolerances: closed forms 1e-6 relative (Nelder-Mead stops at ``fatol`` 1e-9 on -2 log L);
algebraic identities 1e-9.
"""

import numpy as np
import pytest
from scipy.linalg import block_diag
from scipy.stats import multivariate_normal

from twinjax.eval.mixed import blup, fit_lme, gls, predict_lme


def _growth(n=12, t=5, seed=0, missing=True):
    rng = np.random.default_rng(seed)
    time = np.tile(np.arange(t, dtype=float), (n, 1))
    x = rng.normal(size=(n, t))
    b = rng.normal(size=(n, 2)) * [0.8, 0.3]
    y = 1.0 + 0.4 * time - 0.5 * x + b[:, :1] + b[:, 1:] * time + 0.3 * rng.normal(size=(n, t))
    mask = np.ones((n, t), bool)
    if missing:
        mask[rng.random((n, t)) < 0.2] = False
        mask[:, 0] = True
    X = np.stack([np.ones_like(time), time, x], -1)
    Z = np.stack([np.ones_like(time), time], -1)
    return y, mask, X, Z


def _dense(fit, mask, X, Z):
    """Stacked observed rows: X, Z (block diagonal) and the marginal covariance."""
    m = mask.ravel()
    Xs = X.reshape(-1, X.shape[-1])[m]
    blocks = [Z[i][mask[i]] for i in range(len(Z))]
    Zs = block_diag(*blocks)
    G = np.kron(np.eye(len(Z)), fit.D)
    return Xs, Zs, G, Zs @ G @ Zs.T + fit.sigma2 * np.eye(len(Xs))


def test_reml_random_intercept_is_the_anova_estimator():
    rng = np.random.default_rng(1)
    n, t = 30, 6
    y = 2.0 + rng.normal(size=(n, 1)) * 0.7 + rng.normal(size=(n, t)) * 0.5
    ones = np.ones((n, t, 1))
    fit = fit_lme(y, np.ones((n, t), bool), ones, ones, method="reml")
    msw = ((y - y.mean(1, keepdims=True)) ** 2).sum() / (n * (t - 1))
    msb = t * ((y.mean(1) - y.mean()) ** 2).sum() / (n - 1)
    assert msb > msw  # the closed form holds inside the parameter space
    assert fit.sigma2 == pytest.approx(msw, rel=1e-6)
    assert fit.D[0, 0] == pytest.approx((msb - msw) / t, rel=1e-6)
    assert fit.beta[0] == pytest.approx(y.mean(), rel=1e-9)


def test_beta_and_blups_solve_hendersons_equations():
    y, mask, X, Z = _growth()
    fit = fit_lme(y, mask, X, Z)
    Xs, Zs, G, _ = _dense(fit, mask, X, Z)
    ys = y.ravel()[mask.ravel()]
    lhs = np.block([[Xs.T @ Xs, Xs.T @ Zs], [Zs.T @ Xs, Zs.T @ Zs + fit.sigma2 * np.linalg.inv(G)]])
    sol = np.linalg.solve(lhs, np.concatenate([Xs.T @ ys, Zs.T @ ys]))
    p = X.shape[-1]
    np.testing.assert_allclose(fit.beta, sol[:p], rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(blup(fit, y, mask, X, Z).ravel(), sol[p:], rtol=1e-8, atol=1e-10)
    beta, cov = gls(y, mask, X, Z, fit.D, fit.sigma2)
    np.testing.assert_allclose(beta, fit.beta, rtol=1e-10)
    np.testing.assert_allclose(cov, fit.cov_beta, rtol=1e-10)


def test_ml_is_the_maximum_of_the_dense_likelihood():
    y, mask, X, Z = _growth(seed=2)
    fit = fit_lme(y, mask, X, Z, method="ml")
    assert fit.converged

    def loglik(beta, D, sigma2):
        f = fit._replace(D=D, sigma2=sigma2)
        Xs, _, _, V = _dense(f, mask, X, Z)
        return multivariate_normal(Xs @ beta, V).logpdf(y.ravel()[mask.ravel()])

    best = loglik(fit.beta, fit.D, fit.sigma2)
    assert fit.loglik == pytest.approx(best, rel=1e-9)
    rng = np.random.default_rng(3)
    for _ in range(20):  # any nearby parameter value is worse
        L = np.linalg.cholesky(fit.D) + np.tril(rng.normal(size=(2, 2))) * 0.02
        s2 = fit.sigma2 * np.exp(rng.normal() * 0.02)
        assert loglik(fit.beta + rng.normal(size=3) * 0.01, L @ L.T, s2) < best


def test_forecast_variance_is_that_of_the_linear_predictor():
    y, mask, X, Z = _growth(n=6, t=4, seed=4)
    fit = fit_lme(y, mask, X, Z)
    X_new, Z_new = X[:, -1:] + [0.0, 1.0, 0.3], Z[:, -1:] + [0.0, 1.0]  # the next time

    def forecast(values):  # beta re-estimated from ``values``, variance components fixed
        beta, _ = gls(values, mask, X, Z, fit.D, fit.sigma2)
        return predict_lme(fit._replace(beta=beta), values, mask, X, Z, X_new, Z_new)[0][:, 0]

    obs = np.flatnonzero(mask.ravel())
    basis = np.eye(y.size)[obs]
    c = np.stack([forecast(e.reshape(y.shape)) for e in basis], 1)  # [N, n_obs]
    np.testing.assert_allclose(c @ y.ravel()[obs], forecast(y), rtol=1e-9)  # linear in y
    Xs, Zs, G, V = _dense(fit, mask, X, Z)
    # Cov(y*, y) = Z* G Zs^T (Z* block diagonal: z*_i in subject i's block); Var(y*_i) too
    Zn = block_diag(*Z_new)  # [N, 2N]
    cross = Zn @ G @ Zs.T
    var_new = np.diag(Zn @ G @ Zn.T) + fit.sigma2
    expected = var_new - 2 * np.einsum("no,no->n", c, cross) + np.einsum("no,op,np->n", c, V, c)
    _, sd = predict_lme(fit, y, mask, X, Z, X_new, Z_new)
    np.testing.assert_allclose(sd[:, 0] ** 2, expected, rtol=1e-8)


def test_bad_input_is_refused():
    y, mask, X, Z = _growth(n=4, t=3)
    with pytest.raises(ValueError, match="rank-deficient"):
        fit_lme(y, mask, np.concatenate([X, X[..., :1]], -1), Z)
    with pytest.raises(ValueError, match="method"):
        fit_lme(y, mask, X, Z, method="bayes")
