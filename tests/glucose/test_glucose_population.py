"""The population prior of the glucose twins and its full-rank fit: the prior's moments against
the table, the derived parameters, the AR(1) likelihood against its dense Gaussian, and a tiny
fit's shapes and finiteness."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from scipy import stats

from twinjax.glucose.population import FREE, group_prior, log_free, population, theta_of
from twinjax.glucose.population_fit import (
    LATENT,
    THIN,
    GuideState,
    PatientData,
    ar1_log_likelihood,
    fit_guides,
    fit_population,
    init,
    keep_best,
    log_joint,
    patient_data,
    patient_theta,
    start_points,
)
from twinjax.glucose.records import Records, glucose_path
from twinjax.physiology import PARAM_NAMES, load_patients, patient_names
from twinjax.physiology.params import age_group

P = {n: i for i, n in enumerate(PARAM_NAMES)}


def test_group_prior_leaves_the_patient_out_and_is_full_rank():
    logs = np.log(np.asarray(load_patients().theta, np.float64)[:, [P[q] for q in FREE]])
    names = patient_names()
    others = [i for i, n in enumerate(names) if age_group(n) == "adult" and n != "adult#003"]
    mean, cov = group_prior("adult#003")
    np.testing.assert_allclose(mean, logs[others].mean(0), rtol=1e-12)
    assert np.linalg.eigvalsh(cov).min() > 1e-4  # pooled over groups: 23 parameters, full rank
    # a name outside the table takes its whole group
    np.testing.assert_allclose(group_prior("adult#new")[0], logs[[i for i, n in enumerate(names)
                                                                   if age_group(n) == "adult"]].mean(0))  # fmt: skip


def test_prior_draws_have_the_tables_moments():
    """4000 draws: the mean within 0.1 prior SD (its standard error is 0.016 SD), the SDs within
    8% and the correlations within 0.08 (the bounds change draws beyond 3 SDs only)."""
    pop = population(["child#004"], [35.0])
    mean, cov = group_prior("child#004")
    u = jax.random.normal(jax.random.key(0), (4000, len(FREE)))
    x = np.asarray(jax.vmap(lambda ui: log_free(pop.take(0), ui))(u), np.float64)
    sd = np.sqrt(np.diag(cov))
    free_rates = np.array([q not in ("kabs",) for q in FREE])  # kabs' cap is 0.7 above its tail
    assert np.abs((x.mean(0) - mean) / sd)[free_rates].max() < 0.1
    np.testing.assert_allclose(x.std(0)[free_rates], sd[free_rates], rtol=0.08)
    corr = np.corrcoef(x.T)
    target = cov / np.outer(sd, sd)
    assert np.abs(corr - target)[np.ix_(free_rates, free_rates)].max() < 0.08


def test_theta_keeps_the_tables_exact_relations_and_the_covariates():
    pop = population(["adult#002"], [71.0]).take(0)
    theta = theta_of(pop, jax.random.normal(jax.random.key(1), (len(FREE),)), jnp.float32(0.02))
    assert float(theta[P["BW"]]) == 71.0
    np.testing.assert_allclose(theta[P["m30"]], 1.5 * theta[P["m1"]], rtol=1e-6)
    np.testing.assert_allclose(theta[P["m4"]], 0.4 * theta[P["m2"]], rtol=1e-6)
    np.testing.assert_allclose(theta[P["u2ss"]] * 71.0 / 6000.0, 0.02, rtol=1e-6)
    at_mean = theta_of(pop, jnp.zeros(len(FREE)), jnp.float32(0.02))
    free = np.array([P[q] for q in FREE])
    np.testing.assert_allclose(np.log(at_mean[free]), pop.mean, atol=1e-3)


def test_ar1_likelihood_is_the_dense_gaussian():
    r = np.random.default_rng(0).normal(size=12) * 5.0
    sigma, phi = 4.0, 0.7
    cov = sigma**2 * phi ** np.abs(np.subtract.outer(np.arange(12), np.arange(12)))
    ref = stats.multivariate_normal(np.zeros(12), cov).logpdf(r)
    got = ar1_log_likelihood(jnp.asarray(r), jnp.zeros(12), sigma, phi)
    np.testing.assert_allclose(float(got), ref, rtol=1e-5)


def test_keep_best_takes_each_patients_highest_start_and_skips_nan():
    """Three patients x four starts, the state's leaves tagged by (patient, start): the kept
    leaves are those of the argmax of each row, a NaN log density never wins."""
    loc = jnp.arange(3 * 4, dtype=jnp.float32).reshape(3, 4, 1) * jnp.ones((1, 1, LATENT))
    state = jax.vmap(jax.vmap(init))(loc)
    log_p = jnp.array(
        [[1.0, 5.0, 2.0, -1.0], [jnp.nan, -3.0, -2.0, -9.0], [0.0, 0.0, jnp.nan, -1.0]]
    )
    kept, best = keep_best(state, log_p)
    assert best.tolist() == [1, 2, 0]
    np.testing.assert_array_equal(kept.loc[:, 0], [1.0, 6.0, 8.0])
    assert isinstance(kept, GuideState) and kept.raw.shape == (3, LATENT, LATENT)
    np.testing.assert_array_equal(kept.adam.mu[0], state.adam.mu[0][jnp.arange(3), best])


def test_start_points_begin_at_the_population_mean():
    z = start_points(jax.random.key(0), 5, 3)
    assert z.shape == (5, 3, LATENT)
    assert float(jnp.abs(z[:, 0]).max()) == 0.0 and float(z[:, 1:].std()) > 0.5


def _tiny_records(z):
    """Two patients' two hours of noise-free records under the latents ``z`` [2, LATENT]."""
    names, bw, basal = ("adult#001", "child#001"), np.array([80.0, 30.0]), np.array([0.015, 0.008])
    pop = population(names, bw)
    carbs = np.zeros((2, 120), np.float32)
    carbs[:, 10] = 40.0
    insulin = np.repeat(basal[:, None], 120, 1).astype(np.float32)
    insulin[:, 10] += 4.0

    def one(pop_i, z_i, b, c, u):
        theta, x0 = patient_theta(pop_i, z_i, b)
        return glucose_path(theta, x0, c, u, step=3)

    g = jax.vmap(one)(pop, z, jnp.asarray(basal, jnp.float32), carbs, insulin)
    recs = Records(np.asarray(g), carbs, insulin, insulin[:, 0], bw.astype(np.float32), 3.0, names)
    return pop, recs


@pytest.mark.integration
def test_the_mode_search_keeps_the_best_of_its_starts():
    """Four starts, no ELBO steps: the kept ``loc`` is the start whose log joint is the highest,
    it is at least the population mean's, and the mode phase's losses follow that start."""
    z = jax.random.normal(jax.random.key(2), (2, LATENT)) * 0.5
    pop, recs = _tiny_records(z)
    data = patient_data(recs)
    fit = fit_guides(jax.random.key(4), pop, data, step=3, mode_steps=6, steps=0, starts=4)
    assert fit.start_log_joint.shape == (2, 4) and fit.losses.shape == (6, 2)
    np.testing.assert_array_equal(fit.best, np.nanargmax(fit.start_log_joint, 1))
    lp = jax.jit(jax.vmap(lambda zi, p, d: log_joint(zi, p, d, step=3)))(fit.state.loc, pop, data)
    np.testing.assert_allclose(lp, np.nanmax(fit.start_log_joint, 1), rtol=1e-5)
    assert (np.asarray(lp) >= fit.start_log_joint[:, 0] - 1e-3).all()
    one = fit_guides(jax.random.key(4), pop, data, step=3, mode_steps=6, steps=0, starts=1)
    np.testing.assert_allclose(one.start_log_joint[:, 0], fit.start_log_joint[:, 0], rtol=1e-4)


@pytest.mark.integration
def test_a_tiny_fit_is_finite_and_shaped():
    """Two patients, two hours of records made from a prior draw: a few steps of each phase."""
    z = jax.random.normal(jax.random.key(2), (2, LATENT)) * 0.5
    pop, recs = _tiny_records(z)
    basal, carbs, insulin, g = recs.basal, recs.carbs, recs.insulin, recs.cgm
    twin, fit = fit_population(jax.random.key(3), recs, fit_days=2 / 24, mode_steps=4, steps=4,
                               starts=2, draws=5, prior=pop)  # fmt: skip
    assert twin.theta.shape == (2, 5, len(PARAM_NAMES)) and twin.x0.shape == (2, 5, 13)
    assert twin.noise_sd.shape == twin.noise_ar.shape == (2, 5) and twin.estimated == FREE
    assert fit.loc.shape == (2, LATENT) and fit.scale_tril.shape == (2, LATENT, LATENT)
    assert fit.losses.shape == (8, 2) and np.isfinite(fit.losses).all()
    assert fit.start_log_joint.shape == (2, 2) and fit.best.shape == (2,)
    assert bool(jnp.isfinite(twin.theta).all() & jnp.isfinite(twin.x0).all())
    # the likelihood reads every THIN-th reading only
    data = PatientData(jnp.float32(basal[0]), carbs[0], insulin[0], jnp.asarray(g[0]))
    lp = jax.jit(lambda d: log_joint(z[0], pop.take(0), d, step=3))
    moved = lambda i: lp(data._replace(cgm=data.cgm.at[i].add(5.0)))
    assert float(moved(1)) == float(lp(data)) != float(moved(THIN))
