"""Every malformed-input case raises a CohortError naming the file, row, column and fix.

Each case corrupts a valid cohort, writes REAL CSV and Parquet files into tmp_path and reads them back.
Row numbers: CSV line number (header = line 1, so data row k is line k + 2); Parquet record k + 1.
"""

import numpy as np
import pandas as pd
import pytest

from twinjax.data.errors import CohortError
from twinjax.data.io import read_cohort


def clean_tables():
    subjects, variables, times = ["s1", "s2"], ["glucose", "hr"], [0.0, 1.0, 2.0]
    obs = pd.DataFrame(
        [(s, t, v, 10.0 * i + t) for i, s in enumerate(subjects) for v in variables for t in times],
        columns=["subject_id", "time", "variable", "value"],
    )
    itv = pd.DataFrame(
        {
            "subject_id": ["s1", "s2", "s2"],
            "time": [0.5, 1.0, 1.0],
            "kind": ["insulin", "insulin", "meal"],
            "amount": [2.0, 1.0, 30.0],
        }
    )
    static = pd.DataFrame({"subject_id": ["s1", "s2"], "age": [40.0, 50.0], "sex": [0.0, 1.0]})
    return {"observations": obs, "interventions": itv, "static": static}


def write(tables, tmp_path, fmt):
    paths = {}
    for name, df in tables.items():
        path = tmp_path / f"{name}_bad.{fmt}"
        if fmt == "csv":
            df.to_csv(path, index=False)
        else:
            # parquet columns need one type: a column holding a stray string is stored as strings
            df = df.apply(lambda c: c.astype(str) if c.map(type).nunique() > 1 else c)
            df.to_parquet(path, index=False)
        paths[name] = path
    return paths


def set_cell(table, row, col, value):
    def corrupt(t):
        t[table] = t[table].astype({col: object})
        t[table].loc[row, col] = value

    return corrupt


def append_row(table, row):
    def corrupt(t):
        t[table] = pd.concat([t[table], pd.DataFrame([row])], ignore_index=True)

    return corrupt


def drop_col(table, col):
    def corrupt(t):
        t[table] = t[table].drop(columns=col)

    return corrupt


def add_col(table, col):
    def corrupt(t):
        t[table] = t[table].assign(**{col: 1.0})

    return corrupt


def set_subject(table, row, value):
    return set_cell(table, row, "subject_id", value)


def both(first, second):
    def corrupt(t):
        first(t)
        second(t)

    return corrupt


# s3 is in the static and intervention tables but has no observations
new_static = {"subject_id": "s3", "age": 1.0, "sex": 0.0}
s3_itv = {"subject_id": "s3", "time": 1.0, "kind": "insulin", "amount": 1.0}

# (id, corruption, table whose file is named, data row (None: the header), column, message part)
CASES = [
    ("missing_column", drop_col("observations", "value"), "observations", None, "value",
     "missing required column"),
    ("unknown_column", add_col("observations", "unit"), "observations", None, "unit",
     "unknown column"),
    ("non_numeric_value", set_cell("observations", 4, "value", "high"), "observations", 4,
     "value", "non-numeric value"),
    ("non_numeric_time", set_cell("observations", 2, "time", "noon"), "observations", 2,
     "time", "non-numeric value"),
    ("nan_value", set_cell("observations", 7, "value", np.nan), "observations", 7, "value",
     "missing value"),
    ("inf_value", set_cell("observations", 3, "value", np.inf), "observations", 3, "value",
     "infinite value"),
    ("negative_time", set_cell("observations", 0, "time", -1.0), "observations", 0, "time",
     "negative time"),
    ("duplicate_time", set_cell("observations", 5, "time", 1.0), "observations", 5, "time",
     "duplicate timestamp"),
    ("missing_subject", set_subject("observations", 6, np.nan), "observations", 6,
     "subject_id", "missing value"),
    ("static_without_obs", append_row("static", new_static), "static", 2, "subject_id", "subject without observations"),
    ("itv_without_obs", both(append_row("static", new_static), append_row("interventions", s3_itv)),
     "interventions", 3, "subject_id", "subject without observations"),
    ("itv_unknown_subject", set_subject("interventions", 1, "s9"), "interventions", 1,
     "subject_id", "unknown subject"),
    ("itv_unknown_kind", set_cell("interventions", 2, "kind", "snack"), "interventions", 2,
     "kind", "unknown intervention kind"),
    ("itv_negative_time", set_cell("interventions", 0, "time", -0.5), "interventions", 0,
     "time", "negative time"),
    ("itv_bad_amount", set_cell("interventions", 1, "amount", "lots"), "interventions", 1,
     "amount", "non-numeric value"),
    ("static_non_numeric", set_cell("static", 1, "sex", "F"), "static", 1, "sex",
     "non-numeric value"),
    ("static_duplicate", append_row("static", {"subject_id": "s1", "age": 41.0, "sex": 0.0}),
     "static", 2, "subject_id", "duplicate subject"),
]  # fmt: skip


@pytest.mark.parametrize("fmt", ["csv", "parquet"])
@pytest.mark.parametrize(
    "corrupt,table,row,column,text", [c[1:] for c in CASES], ids=[c[0] for c in CASES]
)
def test_malformed_input_raises(tmp_path, fmt, corrupt, table, row, column, text):
    tables = clean_tables()
    corrupt(tables)
    paths = write(tables, tmp_path, fmt)
    with pytest.raises(CohortError) as info:
        read_cohort(
            paths["observations"],
            paths["interventions"],
            paths["static"],
            intervention_kinds=["insulin", "meal"],
        )
    err, msg = info.value, str(info.value)
    offset = 2 if fmt == "csv" else 1
    expect_rows = ([1] if fmt == "csv" else None) if row is None else [row + offset]
    assert f"{table}_bad.{fmt}" in msg
    assert text in msg
    assert f"column {column!r}" in msg
    assert err.rows == expect_rows and err.column == column
    if expect_rows:
        assert f"row(s) {expect_rows[0]}:" in msg or f"row(s) {expect_rows[0]}," in msg
    assert "drop_bad_rows" in msg or row is None  # every row error says how to proceed


def test_observed_subject_without_static_raises(tmp_path):
    tables = clean_tables()
    tables["static"] = tables["static"].iloc[:1]
    paths = write(tables, tmp_path, "csv")
    with pytest.raises(
        CohortError, match=r"static_bad\.csv, column 'subject_id': no static.*s2"
    ) as e:
        read_cohort(paths["observations"], static=paths["static"])
    assert "observations_bad.csv row(s) [8, 9, 10, 11, 12]" in str(e.value)  # s2's first lines


def test_unparsable_csv_names_the_file(tmp_path):
    path = tmp_path / "ragged.csv"
    path.write_text("subject_id,time,variable,value\na,0,x,1\na,1,x,2,extra\n")
    with pytest.raises(CohortError, match=r"ragged\.csv: cannot read.*line 3"):
        read_cohort(path)


def test_dataframe_rows_are_index_labels():
    obs = clean_tables()["observations"]
    obs.index = [f"r{i}" for i in range(len(obs))]
    obs = obs.astype({"value": object})
    obs.loc["r3", "value"] = "oops"
    with pytest.raises(CohortError, match=r"observations DataFrame, row\(s\) r3, column 'value'"):
        read_cohort(obs)


def test_unsupported_file_type(tmp_path):
    path = tmp_path / "obs.xlsx"
    path.write_text("x")
    with pytest.raises(CohortError, match="obs.xlsx.*unsupported file type"):
        read_cohort(path)


def test_blank_lines_keep_editor_line_numbers(tmp_path):
    path = tmp_path / "obs.csv"
    lines = ["subject_id,time,variable,value", "a,0,x,1", "", "a,1,x,bad", ""]
    path.write_text("\n".join(lines) + "\n")
    with pytest.raises(CohortError) as info:
        read_cohort(path)
    assert info.value.rows == [4]  # "a,1,x,bad" is on line 4 of the file


def test_datetime_times_need_a_duration_step():
    obs = clean_tables()["observations"]
    obs["time"] = pd.Timestamp("2026-01-01") + pd.to_timedelta(obs["time"], unit="h")
    with pytest.raises(CohortError, match=r"column 'time': the times are dates.*step='1h'"):
        read_cohort(obs)
    c = read_cohort(obs, step="1h")
    assert c.step == 3600.0 and c.lengths.tolist() == [3, 3] and c.mask.all()


def test_numeric_times_refuse_a_duration_step():
    with pytest.raises(CohortError, match=r"times are numbers.*not '1h'"):
        read_cohort(clean_tables()["observations"], step="1h")
