"""A grid that is mostly empty or will not fit is refused before it is allocated (#22 item 1)."""

import numpy as np
import pandas as pd
import pytest

from twinjax.data import CohortError, read_cohort
from twinjax.data.grid import check_grid


def _hourly(n_subjects=20, hours=80, start=1_700_000_000):
    """Hourly readings with times in epoch seconds (as many devices export them)."""
    rows = [
        {"subject_id": f"s{i}", "time": start + 3600 * h + 7 * i, "variable": "hr", "value": 60.0}
        for i in range(n_subjects)
        for h in range(hours)
    ]
    return pd.DataFrame(rows)


def test_epoch_seconds_with_step_1_is_refused_naming_the_step_to_try(tmp_path):
    path = tmp_path / "obs.csv"
    _hourly().to_csv(path, index=False)
    with pytest.raises(CohortError) as err:
        read_cohort(path, step=1.0)
    text = str(err.value)
    assert text.startswith(f"{path}, column 'time': the grid would be 20 subjects x 284,401 steps")
    assert "times look like epoch seconds" in text and "try data.step=" in text
    assert "0.028%" in text  # 80 readings in 284,401 one-second cells
    cohort = read_cohort(path, step=3600.0)  # the suggested step: one cell an hour
    assert cohort.values.shape == (20, 80, 1) and cohort.mask.all()


def test_epoch_milliseconds_are_recognised():
    obs = _hourly(n_subjects=3, start=1_700_000_000_000)
    obs["time"] = 1_700_000_000_000 + (obs["time"] - 1_700_000_000_000) * 1000
    with pytest.raises(CohortError, match="epoch milliseconds"):
        read_cohort(obs, step=1.0)


def test_a_grid_larger_than_memory_is_refused_with_the_estimate():
    subject = np.repeat(np.arange(10), 1000)
    time = np.tile(np.arange(1000.0), 10)
    est = check_grid(subject, time, subject[:0], time[:0], (10, 1, 0), 1.0, kind="number",
                     step_text="1")  # fmt: skip
    assert est["steps"] == 1000 and est["observed_at_most"] == 1.0
    assert est["array_bytes"] == 10 * 1000 * 5
    with pytest.raises(CohortError, match=r"more than the 0\.0 GB available"):
        check_grid(subject, time, subject[:0], time[:0], (10, 1, 0), 1.0, kind="number",
                   step_text="1", available=est["run_bytes"] - 1)  # fmt: skip


def test_a_small_sparse_grid_is_left_to_the_summary_warning():
    obs = pd.DataFrame({"subject_id": "a", "time": [0.0, 5000.0], "variable": "x",
                        "value": [1.0, 2.0]})  # fmt: skip
    assert read_cohort(obs, step=1.0).n_steps == 5001  # 0.04% observed but only 5,001 cells


def test_a_sparse_grid_is_accepted_for_a_reader_of_visits_and_keeps_their_days():
    """Irregular clinic visits over years, timed in days (as pbcseq's): a one-day grid is 0.1%
    observed and refused for the recurrent twins, which run over every cell; ``sparse=True``
    (the auto twin, which reads the visits back out) accepts it with every visit on its own
    day, where the step the refusal suggests would average visits months apart. The memory
    check stays."""
    rng = np.random.default_rng(0)
    days = np.sort(rng.choice(4000, size=(300, 4), replace=False), axis=1).astype(float)
    obs = pd.DataFrame({"subject_id": np.repeat([f"p{i}" for i in range(300)], 4),
                        "time": days.ravel(), "variable": "albumin",
                        "value": rng.normal(3.5, 0.3, 1200)})  # fmt: skip
    with pytest.raises(CohortError, match="cells observed"):
        read_cohort(obs, step=1.0)
    cohort = read_cohort(obs, step=1.0, sparse=True)
    assert int(cohort.mask.sum()) == 1200 and cohort.meta["merged_observations"] == 0
    chunked = read_cohort(obs, step=1.0, sparse=True, chunk_subjects=100)
    np.testing.assert_array_equal(chunked.mask, cohort.mask)
    first = np.asarray(cohort.t0) + np.argmax(cohort.mask[..., 0], axis=1)
    np.testing.assert_array_equal(np.sort(first), np.sort(days[:, 0]))
    with pytest.raises(CohortError, match="available"):
        check_grid(np.repeat(np.arange(300), 4), days.ravel(), np.zeros(0, int), np.zeros(0),
                   (300, 1, 0), 1.0, kind="number", step_text="1", sparse=True,
                   available=1)  # fmt: skip
