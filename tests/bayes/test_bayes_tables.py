"""Long tables with or without doses, event tables, dose routes, per-parameter scales."""

import numpy as np
import pandas as pd
import pytest
from numpyro import handlers

from twinjax.bayes import HierarchicalSpec, hierarchical_model, linear_predict, pk_data_from_frames
from twinjax.bayes.doses import INFUSION, ORAL
from twinjax.bayes.tables import longitudinal_data, read_long
from twinjax.data.errors import CohortError


def _events():
    return pd.DataFrame({
        "subject_id": ["10", "10", "10", "2", "2", "2"],
        "time": [0.0, 1.0, 5.0, 0.0, 0.0, 3.0],
        "value": [np.nan, 4.0, 2.0, np.nan, np.nan, 1.5],
        "amount": [100.0, np.nan, np.nan, 50.0, 20.0, np.nan],
        "kind": ["infusion", None, None, "bolus", "oral", None],
        "duration": [2.0, np.nan, np.nan, np.nan, np.nan, np.nan],
    })  # fmt: skip


def test_event_table_is_split_into_observations_and_doses_with_routes(tmp_path):
    _events().to_csv(tmp_path / "events.csv", index=False)
    d = longitudinal_data(read_long(tmp_path / "events.csv"))
    assert d.subject_ids == ("2", "10")  # numeric ids in numeric order
    assert d.times.tolist() == [[3.0, 0.0], [1.0, 5.0]] and d.mask.tolist() == [[1, 0], [1, 1]]
    assert d.regimen.amounts.tolist() == [[50.0, 20.0], [100.0, 0.0]]
    assert d.regimen.route[0, 1] == ORAL and d.regimen.route[1, 0] == INFUSION
    assert d.regimen.duration.tolist() == [[0.0, 0.0], [2.0, 0.0]]


def test_event_rows_with_both_or_neither_value_are_errors_naming_rows():
    bad = _events()
    bad.loc[1, "amount"] = 5.0
    with pytest.raises(CohortError, match=r"row\(s\) 1.*both a value and an amount"):
        longitudinal_data(bad)
    bad = _events()
    bad.loc[2, "value"] = np.nan
    with pytest.raises(CohortError, match="neither"):
        longitudinal_data(bad)


def test_infusion_without_duration_and_unknown_route_are_errors():
    bad = _events().drop(columns="duration")
    with pytest.raises(CohortError, match="infusions need a positive 'duration'"):
        longitudinal_data(bad)
    bad = _events()
    bad.loc[3, "kind"] = "subcutaneous"
    with pytest.raises(CohortError, match="unknown dose route"):
        longitudinal_data(bad)
    rate = _events().drop(columns="duration").assign(rate=[50.0] + [np.nan] * 5)
    assert longitudinal_data(rate).regimen.duration[1, 0] == 2.0  # amount / rate


def test_series_without_doses_and_centred_time():
    obs = pd.DataFrame({"subject_id": [1, 1, 2], "time": [1990.0, 1992.0, 1991.0],
                        "variable": "w", "value": [1.0, 2.0, 3.0]})  # fmt: skip
    d = longitudinal_data(obs, time_centre=1991.0)
    assert d.time_centre == 1991.0 and d.times[0].tolist() == [-1.0, 1.0]
    assert d.regimen.amounts.tolist() == [[0.0], [0.0]]
    with pytest.raises(CohortError, match="several variables"):
        longitudinal_data(pd.concat([obs, obs.assign(variable="v")]))
    two = pd.concat([obs, obs.assign(variable="v", value=obs.value * 10)])
    assert longitudinal_data(two, variable="v").values[0].tolist() == [10.0, 20.0]


def test_pk_data_from_frames_accepts_no_doses():
    obs = pd.DataFrame({"subject": [0, 0, 1], "time": [0.0, 1.0, 0.5], "conc": [1.0, 2.0, 3.0]})
    d = pk_data_from_frames(obs, None)
    assert d.regimen[1].tolist() == [[0.0], [0.0]] and d.mask.sum() == 3


def test_omega_scale_per_parameter_and_wrong_length_is_refused_early():
    t = np.tile(np.arange(4.0), (3, 1))
    data = longitudinal_data(pd.DataFrame({"subject_id": np.repeat([0, 1, 2], 4),
                                           "time": t.ravel(), "value": 1.0 + t.ravel()}))  # fmt: skip
    spec = HierarchicalSpec(linear_predict, ("intercept", "slope"), omega_scale=(50.0, 20.0))
    tr = handlers.trace(handlers.seed(hierarchical_model, 0)).get_trace(spec, data)
    assert tr["omega"]["fn"].base_dist.scale.tolist() == [50.0, 20.0]
    with pytest.raises(ValueError, match="omega_scale has 3 values"):
        HierarchicalSpec(linear_predict, ("intercept", "slope"), omega_scale=(1.0, 2.0, 3.0))
    std = HierarchicalSpec(linear_predict, ("intercept", "slope"), omega_scale=(50.0, 20.0),
                           prior_loc=(100.0, 0.0), standardized=True)  # fmt: skip
    tr = handlers.trace(handlers.seed(hierarchical_model, 0)).get_trace(std, data)
    np.testing.assert_allclose(
        tr["omega"]["value"], np.array([50.0, 20.0]) * tr["omega_std"]["value"], rtol=1e-6
    )
    np.testing.assert_allclose(
        tr["mu"]["value"], np.array([100.0, 0.0]) + 2.0 * tr["mu_std"]["value"], rtol=1e-6
    )
