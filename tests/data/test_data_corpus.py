"""The bad-input corpus (``bad_input_corpus.py``): every case ends as it declares, either a
CohortError naming file, rows and column, or a documented handling that its check asserts."""

import pytest
from bad_input_corpus import CASES, Raises, run_case

from twinjax.data import CohortError


def test_corpus_is_large_and_names_are_unique():
    assert len(CASES) >= 50 and len({c.name for c in CASES}) == len(CASES)


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_case_ends_as_declared(case, tmp_path):
    kind, result = run_case(case, tmp_path)  # any other exception fails the test
    expected = case.outcome
    if not isinstance(expected, Raises):
        assert kind == "reads", f"expected {expected.handling!r}, got: {result}"
        expected.check(result)
        return
    assert kind == "raises", f"expected a CohortError with {expected.text!r}, read a cohort"
    err: CohortError = result
    message = str(err)
    assert expected.text in message
    if expected.file:
        assert expected.file in message and expected.file in (err.source or message)
    assert err.rows == expected.rows
    assert err.column == expected.column
    if expected.column:
        assert f"column {expected.column!r}" in message


@pytest.mark.slow
def test_big_cohort_5000_subjects_by_200_steps(tmp_path):
    """Ingest time and peak memory of a 5,000 x 200 cohort (shuffled rows), stated, not asserted.

    Run: .venv/bin/pytest -q -n 0 -m slow tests/data/test_data_corpus.py -s
    """
    import resource
    import time

    from bad_input_corpus import big_cohort

    from twinjax.data import read_cohort

    path = big_cohort(tmp_path)
    start = time.perf_counter()
    c = read_cohort(path, step=0.5)
    seconds = time.perf_counter() - start
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    rows = c.meta["rows"]["observations"]
    print(f"\nread_cohort: {rows:,} rows, {c.values.shape} grid in {seconds:.1f} s; "
          f"peak RSS {peak:.0f} MiB")  # fmt: skip
    assert c.values.shape == (5000, 200, 3) and c.mask.sum() == rows
