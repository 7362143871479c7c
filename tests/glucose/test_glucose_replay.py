"""Counterfactual replay: the noise it replays is the cohort's, the truth's replay of the recorded
therapy is the record, the altered therapies move glucose the way they must, and a twin that
knows the truth scores perfectly."""

import jax
import jax.numpy as jnp
import numpy as np
import pandas as pd
import pytest

from twinjax.glucose import replay_scoring as rs
from twinjax.glucose.records import records
from twinjax.glucose.replay import (
    OUTCOMES,
    THERAPIES,
    cohort_noise,
    replay_cohort,
    replay_outcomes,
    stack,
)
from twinjax.physiology import Sensor, load_patients, load_settings, simulate_cohort
from twinjax.physiology.pump import Pump

pytestmark = pytest.mark.integration  # two replay compilations (about 30 s on 2 CPU cores)

NAMES = ["adult#001"]
KEY = jax.random.key(3)
SENSOR, PUMP = Sensor.named("Dexcom"), Pump.named("Insulet")


@pytest.fixture(scope="module")
def replayed():
    cohort = simulate_cohort(KEY, NAMES, days=2, sensor=SENSOR, pump=PUMP)
    recs = records(cohort)
    noise = cohort_noise(KEY, NAMES, 2, SENSOR)
    cells = recs.cells(1.0)
    p = load_patients(NAMES)
    inputs = (recs.carbs, recs.insulin, noise[:, cells - 1 :], load_settings(NAMES), recs.basal,
              stack(THERAPIES))  # fmt: skip
    opts = {"step": 3, "train_minutes": 1440, "sensor": SENSOR, "pump": PUMP, "substeps": 1}
    truth = replay_cohort(p.theta[:, None], p.x0[:, None], *inputs, **opts)
    twin = replay_cohort(jnp.repeat(p.theta[:, None], 2, 1), jnp.repeat(p.x0[:, None], 2, 1),
                         *inputs, **opts)  # fmt: skip
    return cohort, noise, cells, truth, twin


def test_the_noise_is_the_cohorts(replayed):
    cohort, noise, *_ = replayed
    cgm = np.clip(cohort.truth[..., 0] + noise, SENSOR.lo, SENSOR.hi)
    np.testing.assert_allclose(cgm, cohort.values[..., 0], atol=1e-3)


def test_the_truths_replay_of_the_recorded_therapy_is_the_record(replayed):
    # differs only by the meal's minute within its 3-minute period (the records' placement)
    cohort, _, cells, truth, _ = replayed
    recorded = replay_outcomes(cohort.truth[:, cells:, 0])
    j = list(THERAPIES).index("recorded")
    assert abs(truth["mean"][0, j, 0] - float(recorded["mean"][0])) < 0.5
    assert abs(truth["tir"][0, j, 0] - float(recorded["tir"][0])) < 0.01


def test_altered_therapies_move_glucose_as_they_must(replayed):
    *_, truth, _ = replayed
    mean = dict(zip(THERAPIES, truth["mean"][0, :, 0], strict=True))
    assert mean["bolus x1.3"] < mean["recorded"] < mean["bolus x0.7"]
    assert mean["basal x1.2"] < mean["recorded"] < mean["basal x0.8"]
    assert mean["missed bolus"] > mean["recorded"] + 1.0


def test_a_twin_that_knows_the_truth_scores_perfectly(replayed):
    *_, truth, twin = replayed
    rows = []
    for model, out in (("truth", truth), ("twin", twin)):
        for o in OUTCOMES:
            for j, th in enumerate(THERAPIES):
                v = out[o][0, j]
                rows.append({"subject_id": NAMES[0], "group": "adult", "therapy": th,
                             "model": model, "outcome": o, "value": v.mean(),
                             "lo": v.min() if model == "twin" else np.nan,
                             "hi": v.max() if model == "twin" else np.nan})  # fmt: skip
    table = pd.DataFrame(rows)
    err = rs.errors(table)
    assert err["abs_error"].max() < 1e-3
    assert rs.rank_agreement(table)["spearman"].min() == pytest.approx(1.0)
    assert rs.targets_met(err)["met"].all()
    assert rs.crashed(table) == []
    dead = table.assign(value=np.where(table["outcome"] == "mean", 0.0, table["value"]))
    assert rs.crashed(dead) == NAMES
