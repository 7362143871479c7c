"""Twin (b): the steady start, the paths and forecasts of a twin that knows the truth, and the
recovery of a parameter from noisy records."""

import dataclasses

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from twinjax.glucose import MechanisticTwin, scoring
from twinjax.glucose.mechanistic import (
    fit_mechanistic,
    forecast_mechanistic,
    recovery,
    twin_paths,
)
from twinjax.glucose.records import records, steady_state
from twinjax.physiology import PARAM_NAMES, load_patients, simulate_cohort

NAMES = ["adolescent#001", "adult#001"]


@pytest.fixture(scope="module")
def cohort():
    return simulate_cohort(jax.random.key(3), NAMES, days=2)


def true_twin(names, basal, draws=2) -> MechanisticTwin:
    p = load_patients(names)
    theta = jnp.repeat(p.theta[:, None], draws, 1)
    x0 = jax.vmap(jax.vmap(steady_state))(theta, jnp.broadcast_to(basal[:, None], theta.shape[:2]))
    ones = jnp.ones(theta.shape[:2])
    return MechanisticTwin(theta, x0, ones, tuple(names), ("Vmx",), noise_ar=0.9 * ones)


def test_steady_state_under_the_basal_rate_is_the_tables_state():
    p = load_patients()
    basal = p.get("u2ss") * p.get("BW") / 6000.0  # U/min, simglucose's basal for the patient
    x = jax.vmap(steady_state)(p.theta, basal)
    np.testing.assert_allclose(x, p.x0, rtol=2e-4, atol=1e-4)  # float32 of values ~100


def test_a_twin_that_knows_the_truth_reproduces_the_noise_free_glucose(cohort):
    # the records place each meal at its period's middle minute (the exact minute is not
    # recorded): at most 1 minute off, which moves glucose by at most a few mg/dL on a meal's
    # rise (measured: 0.2-0.4 mg/dL RMS, 1.1-2.3 max over two days for these two patients)
    clean = dataclasses.replace(cohort, values=cohort.truth)
    recs = records(clean)
    twin = true_twin(NAMES, jnp.asarray(recs.basal))
    g = twin_paths(twin, recs)
    truth = cohort.truth[..., 0]
    for d in range(2):
        assert np.sqrt(np.mean((g[:, d] - truth) ** 2)) < 1.0
        assert np.abs(g[:, d] - truth).max() < 4.0
    at = scoring.origins(truth.shape[1], step=recs.step, train_days=0.5)
    fc = forecast_mechanistic(jax.random.key(0), twin, recs, at, paths=g)
    y = scoring.targets(truth, at, step=recs.step)
    assert np.abs(fc.mean - y).max() < 4.0
    assert scoring.score(fc, y)["coverage90"].min() > 0.8  # noise SD 1 against <4 mg/dL errors
    # its recovery table: the truth, and the fasting state under the recorded basal rate (the
    # pump's discretization moves the rate by ~1e-4 of itself)
    table = recovery(twin)
    assert set(table["parameter"]) == {"Vmx", "Gb", "EGPb"}
    np.testing.assert_allclose(table["mean"], table["true"], rtol=1e-3)


@pytest.mark.slow  # ~15 s of CPU warm, 45 s here under load: SVI through a day-long scan
def test_recovers_vmx_with_the_other_parameters_known(cohort):
    # The reference (the prior's centre) is 1.5x the true Vmx (log error 0.41): the records must
    # move it. One day of meals under the Dexcom noise, whose AR(1) residual leaves a posterior
    # SD of log Vmx of ~0.1 (the fitted interval's width / 3.3): the mean within 0.15 and the
    # truth inside the 90% interval. One patient: the cost is the scan's sequential minutes
    # (and its compilation), not the patients, so one shows as much as several.
    recs = records(cohort).take([1])
    start = np.array(load_patients(NAMES[1:]).theta)
    start[:, PARAM_NAMES.index("Vmx")] *= 1.5
    twin, fit = fit_mechanistic(
        jax.random.key(0), recs, fit_days=1.0, estimated=("Vmx",), fixed=start, steps=100,
        lr=0.1, draws=200,
    )  # fmt: skip
    assert fit.losses[-10:].mean() < fit.losses[:10].mean()
    table = recovery(twin).query("parameter == 'Vmx'")  # (not the fasting-state rows)
    err = np.abs(np.log(table["mean"] / table["true"]))
    assert (err < 0.15).all(), table
    assert table["inside"].all(), table
