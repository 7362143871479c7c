"""A fuzzed corpus: every generated cohort (``fuzz_tables.cases``) ends in one of two ways.

Either the app's data steps (``pipeline.load_cohort``, ``pipeline.check_cohort``, ``prepare``)
give a run-ready cohort whose books close (every data row of every table is on the grid,
merged into a shared cell, removed as an exact repeat, left out as an intervention after the
last observation, or dropped with its table, file, column, reason and row label; subjects set
aside are named with a reason; normalized arrays and scalers are finite), or they stop with a
``CohortError`` naming one of the files (and, where it names rows or a column, rows and a column
of that file). Any other exception, a NumPy ``RuntimeWarning`` (overflow, invalid cast) or a row
that vanishes fails the test.

Run ``.venv/bin/python -m pytest -q -s tests/data/test_fuzz_corpus.py -p no:randomly`` to see
the outcomes drawn. CI's profile draws the same 150 cases on
every run; ``TWINJAX_FUZZ_EXAMPLES=4000`` searches longer, and ``TWINJAX_FUZZ_PROFILE=search``
(with ``--hypothesis-seed=N``) draws other cases. A case a search finds goes into
``REGRESSIONS`` below with the fix it needed.
"""

import dataclasses
import os
import tempfile
import warnings
from collections import Counter
from pathlib import Path

import jax
import numpy as np
import pandas as pd
import pytest
from fuzz_tables import COLUMNS, FAR, ITV, OBS, STA, Case, Table, Written, cases, write_case
from hypothesis import HealthCheck, event, given, settings

from twinjax import pipeline
from twinjax.config import DataConfig
from twinjax.data import Cohort, CohortError, prepare

settings.register_profile(
    "twinjax-ci",
    derandomize=True,  # the same cases on every run: a CI failure reproduces locally
    deadline=None,  # first calls compile JAX's normalization ops; no timing flakes
    database=None,  # nothing written into the repository
    max_examples=int(os.environ.get("TWINJAX_FUZZ_EXAMPLES", "150")),
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    print_blob=True,
)
settings.register_profile("twinjax-search", settings.get_profile("twinjax-ci"), derandomize=False)
CI = settings.get_profile(f"twinjax-{os.environ.get('TWINJAX_FUZZ_PROFILE', 'ci')}")

# check_cohort's two errors about the whole cohort (every subject too short, no window fits):
# they come after the files were read and name the observations file, no row or column
COHORT_WIDE = ("no subject is long or dense enough", "the series are too short for")


def config(case: Case, written: dict[str, Written]) -> DataConfig:
    """The app's data config for ``case`` (tiny windows: the fuzzed cohorts are short)."""
    path = lambda name: str(written[name].path) if name in written else None
    return dataclasses.replace(
        DataConfig(),
        source="files",
        observations=path(OBS),
        interventions=path(ITV),
        static=path(STA),
        step=case.step,
        origin=case.origin,
        drop_bad_rows=case.drop_bad_rows,
        sep=case.sep,
        normalization=case.normalization,
        context=1,
        horizon=1,
    )


def run(case: Case) -> tuple[str, object]:
    """Writes and reads ``case`` as the app does and checks the invariant; returns the outcome
    and the error or the run-ready cohort."""
    with tempfile.TemporaryDirectory() as tmp, warnings.catch_warnings():
        warnings.simplefilter("error", RuntimeWarning)
        written = write_case(case, Path(tmp))
        cfg = config(case, written)
        try:
            cohort = pipeline.load_cohort(jax.random.key(0), cfg)
        except CohortError as err:
            check_error(err, case, written)
            return "CohortError naming a file", err
        check_books(cohort, case, written)
        try:
            ready = pipeline.check_cohort(cohort, cfg)
        except CohortError as err:
            assert any(m in str(err) for m in COHORT_WIDE), err
            assert err.source == str(written[OBS].path) and err.rows is None, err
            return "cohort-wide CohortError", err
        check_summary(ready, cohort)
        check_arrays(ready, cfg)
        return "run-ready cohort", ready


def data_labels(w: Written) -> set:
    return {label for label in w.labels if label is not None}


def check_error(err: CohortError, case: Case, written: dict[str, Written]) -> None:
    """The error names one of the files; its rows are rows (or the header) of that file, its
    column a column of that file or one it must have."""
    sources = {str(w.path): name for name, w in written.items()}
    assert err.source in sources, f"a CohortError that names no input file: {err}"
    assert err.source in str(err)
    name = sources[err.source]
    if err.rows:
        lines = {*written[name].lines, written[name].header_row}
        assert set(err.rows) <= lines, (err.rows, str(err))
    if err.column is not None:
        table = case.table(name)
        known = {h.strip() for h in table.header} | set(COLUMNS.get(name, ("subject_id",)))
        if table.trailing_sep == "all":  # pandas names the empty field after the last one
            known.add(f"Unnamed: {len(table.header)}")
        assert err.column in known and f"column {err.column!r}" in str(err), str(err)


def dropped_labels(cohort: Cohort, written: dict[str, Written]) -> dict[str, list]:
    """Each table's dropped row labels; every drop names its file, column, reason and rows."""
    out = {name: [] for name in written}
    for e in cohort.meta["dropped_rows"]["entries"]:
        w = written[e["table"]]
        assert e["source"] == str(w.path) and e["reason"] and e["column"]
        assert e["count"] == len(e["rows"]) > 0
        out[e["table"]] += e["rows"]
    for name, rows in out.items():
        assert len(set(rows)) == len(rows), f"a row of {name} dropped twice: {rows}"
        assert set(rows) <= data_labels(written[name])
    return out


def check_books(cohort: Cohort, case: Case, written: dict[str, Written]) -> None:
    """Every data row of every table is accounted for (see the module docstring)."""
    meta = cohort.meta
    dropped = dropped_labels(cohort, written)
    assert meta["rows"] == {name: len(data_labels(w)) for name, w in written.items()}
    blank = {name for name, w in written.items() if None in w.labels}
    for name in blank:
        assert any("every field empty" in n and name in n for n in meta["notes"]), meta["notes"]
    grid, rows = meta["rows_in_grid"], meta["rows"]
    assert grid[OBS] == cohort.mask.sum() + meta["merged_observations"]
    assert rows[OBS] == grid[OBS] + meta["duplicate_rows_removed"] + len(dropped[OBS])
    if ITV in written:
        late = meta["interventions_after_last_observation"]
        assert rows[ITV] == grid[ITV] + late + len(dropped[ITV])
        if late == 0:
            check_amounts(cohort, case.table(ITV), written[ITV], dropped[ITV])
    if STA in written:
        assert rows[STA] == grid[STA] + len(dropped[STA]) and grid[STA] == cohort.n_individuals
    if meta["merged_observations"] == 0 and meta["duplicate_rows_removed"] == 0:
        check_values(cohort, case.table(OBS), written[OBS], dropped[OBS])


def _kept_numbers(table: Table, w: Written, dropped: list, column: str) -> np.ndarray | None:
    """The kept rows' cells of ``column`` as floats (None where one is not a plain number)."""
    at = [h.strip() for h in table.header].index(column)
    kept = [r[at] for r, label in zip(table.rows, w.labels, strict=True)
            if label is not None and label not in dropped]  # fmt: skip
    if not all(type(v) in (int, float) for v in kept):
        return None
    return np.array(kept, np.float64)


def check_values(cohort: Cohort, table: Table, w: Written, dropped: list) -> None:
    """No cell shared and no repeat removed: the grid holds exactly the kept rows' values
    (float32; relative tolerance 1e-6 for the text round trip)."""
    expected = _kept_numbers(table, w, dropped, "value")
    if expected is not None:
        got = np.sort(cohort.values[cohort.mask].astype(np.float64))
        np.testing.assert_allclose(got, np.sort(expected.astype(np.float32)), rtol=1e-6, atol=0)


def check_amounts(cohort: Cohort, table: Table, w: Written, dropped: list) -> None:
    """No intervention left out: the grid's amounts sum to the kept rows' amounts (float32
    cells: tolerance 1e-6 of the sum of absolute amounts, plus 1e-30 for amounts that float32
    rounds to 0)."""
    expected = _kept_numbers(table, w, dropped, "amount")
    if expected is not None:
        total = cohort.interventions.astype(np.float64).sum()
        tol = 1e-6 * np.abs(expected).sum() + 1e-30
        assert abs(total - expected.sum()) <= tol, (total, expected)


def check_summary(ready: Cohort, read: Cohort) -> None:
    """The data summary closes the books and names every subject set aside."""
    s = ready.meta["data_summary"]
    assert s["rows_read"] == read.meta["rows"] and s["rows_in_grid"] == read.meta["rows_in_grid"]
    out = sum(s["rows_in_grid"].values()) + s["rows_dropped"] + s["duplicate_rows_removed"]
    assert sum(s["rows_read"].values()) == out + s["interventions_after_last_observation"]
    excluded = [e["subject"] for e in s["subjects_excluded"]]
    assert all(e["reason"] for e in s["subjects_excluded"])
    assert Counter([*ready.subject_ids, *excluded]) == Counter(read.subject_ids)
    assert s["subjects"] == ready.n_individuals > 0


def check_arrays(ready: Cohort, cfg: DataConfig) -> None:
    """The model's inputs and the scalers that map its outputs back are finite."""
    arrays, scalers = prepare(
        ready,
        normalization=cfg.normalization,
        val_fraction=cfg.val_fraction,
        test_fraction=cfg.test_fraction,
    )
    for name, x in [*arrays.series._asdict().items(), *scalers.values._asdict().items()]:
        assert np.isfinite(np.asarray(x)).all(), f"non-finite {name}"
    assert (np.asarray(scalers.values.std) > 0).all()
    for x in (scalers.interventions, scalers.static_mean, scalers.static_std):
        assert np.isfinite(np.asarray(x)).all()


@pytest.mark.integration
def test_every_case_is_run_ready_or_names_the_file():
    outcomes = Counter()

    @CI
    @given(cases())
    def check(case):
        outcome = run(case)[0]
        event(outcome)
        outcomes[outcome] += 1

    check()
    # the strategy still reaches both ends (a change that made every case an error would leave
    # the books unchecked): 44% run-ready and 38% named errors over 4,000 cases
    n = sum(outcomes.values())
    print(f"\n{n} cases: {dict(outcomes)}")
    assert outcomes["run-ready cohort"] >= 0.25 * n, outcomes
    assert outcomes["CohortError naming a file"] >= 0.15 * n, outcomes


# --- regressions: cases that failed the invariant before the data layer was fixed -----------

H = COLUMNS[OBS]
SERIES = (
    ("a", 0.0, "hr", 1.0),
    ("a", 1.0, "hr", 2.0),
    ("a", 2.0, "hr", 3.0),
    ("a", 3.0, "hr", 4.0),
)
DOSES = (("a", 1.0, "dose", 2.0), ("a", 1e300, "dose", 1.0))
# the training period (the first 4 of 6 steps) holds +-1.8e19
HUGE = tuple(("a", float(t), "hr", v) for t, v in enumerate([1.8e19, -1.8e19] * 2 + [1.0, 2.0]))


def raises(text: str, rows=None, column=None):
    def check(outcome, err):
        assert outcome == "CohortError naming a file" and text in str(err), str(err)
        assert (err.rows, err.column) == (rows, column), str(err)

    return check


def reads(condition=lambda cohort: True):
    def check(outcome, cohort):
        assert outcome == "run-ready cohort", str(cohort)
        assert condition(cohort), cohort.meta["data_summary"]

    return check


def _iso(year: int) -> tuple:
    return tuple((s, f"{year}-01-01T0{t:.0f}:00", v, x) for s, t, v, x in SERIES)


def _static_huge() -> tuple:
    two = SERIES + tuple(("b", *r[1:]) for r in SERIES)
    return Table(OBS, H, two), Table(STA, ("subject_id", "age"), (("a", 1.8e19), ("b", -1.8e19)))


# (name, case, expected); before the fix: what happened
REGRESSIONS = [
    # TypeError from pandas (df["value"] was two columns); found by hypothesis
    ("header_name_repeated_once_stripped",
     Case((Table(OBS, (*H, "value "), tuple((*r, r[3]) for r in SERIES)),)),
     raises("two columns have this name", rows=[1], column="value")),
    # pandas took the ids as the index and shifted every column left: subject 'a' vanished
    ("delimiter_ending_every_data_line", Case((Table(OBS, H, SERIES, trailing_sep="data"),)),
     reads(lambda c: c.subject_ids == ("a",) and c.values[0, :, 0].tolist() == [1, 2, 3, 4])),
    # the same shift when only the first data line has a field too many
    ("extra_field_on_the_first_line", Case((Table(OBS, H, SERIES, extra_field=0),)),
     raises("more fields than the header", rows=[2])),
    # pandas reads NA as missing and the line was skipped as blank without a word; found by
    # hypothesis (a row of None in the observations)
    ("line_of_na_fields", Case((Table(OBS, H, (*SERIES[:2], ("NA",) * 4, *SERIES[2:])),)),
     reads(lambda c: any("every field empty" in n and "[4]" in n for n in c.meta["notes"]))),
    # ISO text after 2262 overflowed nanoseconds: 2500-01-01 was read as 1915-06-14
    ("dates_after_2262", Case((Table(OBS, H, _iso(2500)),), step="1h"),
     reads(lambda c: c.t0.tolist() == [FAR.timestamp()])),
    ("dates_before_1677", Case((Table(OBS, H, _iso(1600)),), step="1h"),
     reads(lambda c: c.t0.tolist() == [pd.Timestamp("1600-01-01").timestamp()])),
    # the cell of a dose at t=1e300 overflowed int64 (negative) and bincount raised ValueError
    ("intervention_at_1e300", Case((Table(OBS, H, SERIES), Table(ITV, COLUMNS[ITV], DOSES))),
     reads(lambda c: c.meta["data_summary"]["interventions_after_last_observation"] == 1)),
    # values the reader accepts (|x| <= 1.8e19) overflowed the float32 variance: std inf
    ("values_near_float32_sqrt", Case((Table(OBS, H, HUGE),)),
     reads(lambda c: c.meta["data_summary"]["rows_in_grid"] == {OBS: 6})),
    ("values_near_float32_sqrt_per_individual",
     Case((Table(OBS, H, HUGE),), normalization="individual"), reads()),
    # the same for a static covariate (NumPy's float32 std: RuntimeWarning, inf)
    ("static_covariate_near_float32_sqrt", Case(_static_huge()), reads()),
    # check_grid's span overflowed to inf: OverflowError (int(inf)) for origin="absolute";
    # found by hypothesis
    ("step_1e-300_absolute_origin",
     Case((Table(OBS, H, tuple((s, 1.7e9 + 3600 * t, v, x) for s, t, v, x in SERIES)),),
          step=1e-300, origin="absolute"),
     raises("the grid would be 1 subjects x 1.08e+304 steps", column="time")),
    # a dictionary-encoded (categorical) time column with one level: TypeError from pandas
    # (Categorical.any) in times._to_datetime; found by hypothesis
    ("categorical_time_column_one_level",
     Case((Table(OBS, H, _iso(2024)), Table(ITV, COLUMNS[ITV], (
         ("a", "2024-01-01T01:00", "dose", 2.0),), fmt="parquet", categorical=True)), step="1h"),
     reads(lambda c: c.interventions.sum() == 2.0)),
    # an unnamed column (pandas' 'Unnamed: 4') now says where it comes from
    ("delimiter_ending_the_header_too", Case((Table(OBS, H, SERIES, trailing_sep="all"),)),
     raises("a column without a name", rows=[1], column="Unnamed: 4")),
]  # fmt: skip


@pytest.mark.parametrize("name,case,expected", REGRESSIONS, ids=[r[0] for r in REGRESSIONS])
def test_regression(name, case, expected):
    expected(*run(case))
