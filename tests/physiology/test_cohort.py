"""The virtual T1D cohort: its records agree with the simulation and round-trip through Parquet."""

import jax
import numpy as np
import pandas as pd
import pytest

from twinjax.data import read_cohort
from twinjax.physiology import load_settings
from twinjax.physiology.cohort import simulate_cohort, write_cohort
from twinjax.physiology.scenario import random_scenario


@pytest.mark.integration
def test_cohort_records_and_parquet_round_trip(tmp_path):
    names = ["adult#005", "child#003"]
    key = jax.random.key(4)
    c = simulate_cohort(key, names, days=1, substeps=1)  # one RK4 step a minute: a smaller program
    assert c.values.shape == (2, 481, 1) and c.step == 3.0
    # carbs recorded per 3-minute cell are the scenario's meals of that patient (key folded by
    # table position: adult#005 is 15th, child#003 is 23rd)
    for row, index in enumerate((14, 22)):
        meals = np.asarray(random_scenario(jax.random.split(jax.random.fold_in(key, index))[0], 1))
        np.testing.assert_allclose(c.interventions[row, :-1, 0], meals.reshape(-1, 3).sum(-1))
    # every announced meal got a bolus in the next cell, sized by the carb ratio (within the
    # correction term: |CGM - 140| / CF <= 4 U here, so bolus >= carbs / CR - 4)
    cr = np.asarray(load_settings(names).carb_ratio)
    for i in range(2):
        meal_cells = np.flatnonzero(c.interventions[i, :, 0])
        bolus = c.interventions[i, meal_cells + 1, 1]
        assert np.all(bolus > 0) and np.all(bolus >= c.interventions[i, meal_cells, 0] / cr[i] - 4)
    noise = c.values - c.truth  # sensor noise: the Johnson S_U model's scale, not zero
    assert 3.0 < noise.std() < 40.0
    paths = write_cohort(c, tmp_path)
    back = read_cohort(paths["observations"], paths["interventions"], paths["static"], step=3.0)
    assert back.subject_ids == tuple(names) and back.variables == ("cgm",)
    np.testing.assert_allclose(back.values, c.values, rtol=1e-6)
    order = [c.intervention_kinds.index(k) for k in back.intervention_kinds]
    np.testing.assert_allclose(back.interventions, c.interventions[:, :, order], rtol=1e-6)
    np.testing.assert_array_equal(back.lengths, c.lengths)
    params = pd.read_parquet(paths["parameters"])
    assert list(params["subject_id"]) == names and params.shape[1] == 33
