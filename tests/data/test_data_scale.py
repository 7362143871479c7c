"""Scale check (slow, run by hand): a 2-million-row Parquet cohort reads back exactly, in seconds.

Run: .venv/bin/pytest -q -m slow tests/data/test_data_scale.py -s
"""

import time

import numpy as np
import pytest

from twinjax.data.cohort import Cohort
from twinjax.data.io import read_cohort, to_long


@pytest.mark.slow
def test_two_million_rows_round_trip(tmp_path):
    rng = np.random.default_rng(0)
    n, t, f = 10_000, 100, 3
    mask = rng.random((n, t, f)) < 0.7
    mask[:, 0, 0] = mask[:, -1, 1] = True  # every subject spans the full grid
    cohort = Cohort(
        values=np.where(mask, rng.normal(size=mask.shape), 0).astype(np.float32),
        mask=mask,
        interventions=np.zeros((n, t, 0), np.float32),
        static=np.zeros((n, 0), np.float32),
        lengths=np.full(n, t, np.int32),
        subject_ids=tuple(f"S{i:05d}" for i in range(n)),
        variables=("glucose", "hr", "insulin"),
        t0=rng.integers(0, 1000, n).astype(np.float64),
        step=0.5,
    )
    obs, _, _ = to_long(cohort)
    obs.to_parquet(tmp_path / "obs.parquet", index=False)
    start = time.perf_counter()
    back = read_cohort(tmp_path / "obs.parquet", step=0.5)
    seconds = time.perf_counter() - start
    print(f"\nread_cohort: {len(obs):,} rows from Parquet in {seconds:.2f} s")
    for k in ("values", "mask", "lengths", "t0"):
        np.testing.assert_array_equal(getattr(back, k), getattr(cohort, k), err_msg=k)
    assert back.subject_ids == cohort.subject_ids and len(obs) > 2_000_000
