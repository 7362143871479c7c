"""experiment=wages_panel: the panel layout check and no 1982 target in any training array (its
tiny run, whose mixed-model forecasts match the library's: tests/experiments/test_experiments.py)."""

import numpy as np
import pytest

from twinjax_experiments import wages_panel as wp


@pytest.fixture(scope="module")
def table():
    return wp.load_wages()


def test_layout_holds_and_a_shuffled_table_is_refused(table):
    p = wp.panel(table)
    assert p.lwage.shape == (595, 7) and p.ids[-1] == 595
    assert (np.diff(p.exp, axis=1) == 1).all()
    assert p.lwage[1, 0] == table.lwage.iloc[7]  # worker 2 starts at row 8
    shuffled = table.sample(frac=1.0, random_state=0).reset_index(drop=True)
    with pytest.raises(wp.PanelError, match="worker by worker"):
        wp.panel(shuffled)
    with pytest.raises(wp.PanelError, match="whole number"):
        wp.panel(table.iloc[:-1])
    swapped = table.copy()  # two rows of one worker exchanged: experience goes down
    swapped.iloc[[8, 9]] = swapped.iloc[[9, 8]].to_numpy()
    with pytest.raises(wp.PanelError, match=r"rows 8-14 \(worker 2\)"):
        wp.panel(swapped)


def test_forecast_year_is_in_no_training_array(table):
    p = wp.take(wp.panel(table), np.arange(40))
    moved = p._replace(lwage=p.lwage + np.r_[np.zeros(6), 100.0])  # 1982 values changed
    levels = (0.5, 0.9)
    built = []
    for q in (p, moved):
        d = wp.design(q, 6)
        cohort = wp.twin_cohort(q, 6)
        data = wp.growth_data(d, q.lwage, 6)
        _, lme = wp.lme_forecast(d, q.lwage, 6, levels, "reml")
        lvcf = wp.lvcf_forecast(q.lwage[:, :6], levels)
        built.append((cohort.values, cohort.mask, data.values, data.times, lme.point,
                      lme.intervals[0.9][1], lvcf.point))  # fmt: skip
    assert not built[0][1][:, 6].any()
    for a, b in zip(*built, strict=True):
        np.testing.assert_array_equal(a, b)
