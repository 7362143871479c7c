"""fit and forecast on the one-compartment oral model: a cohort vmapped equals one individual at
a time, the mode recovers the truth from near-noiseless data, the Laplace covariance is the
inverse Hessian, and masked points change nothing."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from scipy.optimize import least_squares

from twinjax.mechanistic import (
    MechanisticModel,
    Prior,
    fit,
    forecast,
    neg_log_posterior,
    on_grid,
    simulate,
)
from twinjax.mechanistic.models import ONE_COMPARTMENT_ORAL, dosing

TIMES = jnp.arange(0.0, 24.5, 1.0)
U = dosing(oral=on_grid(TIMES, jnp.zeros(1), jnp.array([4.0])))
TRUTH = jnp.array([[-2.4, 0.5, -3.2], [-2.2, 0.0, -3.0], [-2.7, 1.0, -3.4]])  # lKe, lKa, lCl
PRIOR = Prior(loc=jnp.array([-2.0, 0.0, -3.0]), scale=jnp.full(3, 2.0), noise_loc=jnp.log(0.01))
MASK = (TIMES > 0) & (TIMES != 7.0)


def _data(key):
    y = jax.vmap(lambda th: simulate(ONE_COMPARTMENT_ORAL, th, TIMES, U)[0])(TRUTH)
    noisy = y + 0.01 * jax.random.normal(key, y.shape)
    return y, jnp.where(MASK, noisy, 1e3)  # an unobserved point holds garbage


DECAY = MechanisticModel(
    param_names=("lk", "lx0"),
    init_state=lambda th: jnp.exp(th[1]),
    rhs=lambda x, th, u: -jnp.exp(th[0]) * x,
    observe=lambda x, th: x,
)


def test_fit_equals_least_squares_and_its_standard_errors():
    """x' = -k x, x(0) = x0 observed at 8 times with noise SD 0.01 (three individuals,
    vmapped), weak priors (SD 3): the modes of (log k, log x0) equal scipy's least squares of
    the closed form ``x0 exp(-k t)`` to 1e-4 (measured 2.5e-6); the noise SD (its marginal mode)
    equals the residual SD on n - p degrees of freedom, ``sqrt(RSS / 6)``, and the Laplace SDs
    the standard errors ``sqrt(diag((J^T J)^-1) RSS / 6)``, to 8% (measured 4.6% and 4.8%: the
    prior on the noise SD, centred at 0.05, pulls it up)."""
    times = jnp.linspace(0.0, 3.5, 8)
    truth = jnp.array([[-1.0, 0.5], [0.0, 0.0], [-0.5, 1.0]])
    t = np.asarray(times, np.float64)
    th = np.asarray(truth, np.float64)
    y = np.exp(th[:, 1:]) * np.exp(-np.exp(th[:, :1]) * t)
    y = (y + 0.01 * np.random.default_rng(0).normal(size=y.shape)).astype(np.float32)
    prior = Prior(loc=jnp.zeros(2), scale=jnp.full(2, 3.0), noise_loc=jnp.log(0.05))
    fits = jax.jit(
        jax.vmap(
            lambda obs: fit(
                DECAY,
                times,
                obs,
                jnp.ones(8, bool),
                jnp.zeros(7),
                prior,
                steps=300,
                learning_rate=0.1,
                substeps=4,
            )  # fmt: skip
        )
    )(jnp.asarray(y))
    model = lambda th: np.exp(th[1]) * np.exp(-np.exp(th[0]) * t)
    for i in range(3):
        ls = least_squares(lambda th, i=i: model(th) - y[i], np.zeros(2))
        rss = float(np.sum(ls.fun**2))
        se = np.sqrt(np.diag(np.linalg.inv(ls.jac.T @ ls.jac)) * rss / 6)
        np.testing.assert_allclose(fits.params[i], ls.x, atol=1e-4)
        np.testing.assert_allclose(np.exp(fits.log_sigma[i]), np.sqrt(rss / 6), rtol=0.08)
        np.testing.assert_allclose(np.sqrt(np.diag(fits.cov[i])[:2]), se, rtol=0.08)


def _fit(obs):
    return fit(ONE_COMPARTMENT_ORAL, TIMES, obs, MASK, U, PRIOR, steps=400, substeps=4)


@pytest.mark.integration
def test_vmapped_fit_equals_one_at_a_time_and_recovers_the_truth():
    """Three individuals: ``jax.vmap(fit)`` equals ``fit`` per individual (modes to 1e-4; the
    batched and single programs round differently), every mode is within 0.03 of the truth
    (noise SD 0.01 mg/L on concentrations of 1-10), the covariance is the inverse Hessian of the
    negative log posterior at the mode (to 1e-3 relative), and the 1e3 written at the masked
    time changes nothing."""
    y, obs = _data(jax.random.key(0))
    one = jax.jit(_fit)
    batched = jax.jit(jax.vmap(_fit))(obs)
    for i in range(3):
        single = one(obs[i])
        np.testing.assert_allclose(batched.params[i], single.params, atol=1e-4)
    np.testing.assert_allclose(batched.params, TRUTH, atol=0.03)

    z = jnp.concatenate([batched.params[0], batched.log_sigma[:1]])
    nlp = lambda z: neg_log_posterior(ONE_COMPARTMENT_ORAL, z, TIMES, obs[0], MASK, U, PRIOR,
                                      substeps=4)  # fmt: skip
    np.testing.assert_allclose(
        batched.cov[0], jnp.linalg.inv(jax.hessian(nlp)(z)), rtol=1e-3, atol=1e-9
    )
    clean = one(jnp.where(MASK, obs[0], 0.0))
    np.testing.assert_allclose(clean.params, batched.params[0], atol=1e-4)


@pytest.mark.integration
def test_forecast_without_noise_brackets_the_trajectory():
    """The noise-free 90% intervals of the fitted trajectory contain the truth at 20 or more of
    the 25 grid times and are narrower than 0.1 mg/L; with observation noise they widen by about
    the noise (3.29 SD = 0.033 mg/L at 90%)."""
    y, obs = _data(jax.random.key(1))
    fitted = jax.tree.map(lambda a: a[0], jax.jit(jax.vmap(_fit))(obs))
    key = jax.random.key(2)
    traj = forecast(ONE_COMPARTMENT_ORAL, fitted, TIMES, U, key=key, noise=False, substeps=4)
    pred = forecast(ONE_COMPARTMENT_ORAL, fitted, TIMES, U, key=key, substeps=4)
    inside = (y[0] >= traj.lower - 1e-6) & (y[0] <= traj.upper + 1e-6)
    assert int(inside.sum()) >= 20, inside
    assert float((traj.upper - traj.lower).max()) < 0.1
    width = float((pred.upper - pred.lower)[1:].mean())
    assert 0.02 < width < 0.06, width
