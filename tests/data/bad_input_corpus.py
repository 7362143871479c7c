"""A generated corpus of bad and awkward inputs for ``read_cohort``, each with its expected outcome.

Every case writes its files into a fresh directory (``build(tmp) -> read_cohort keyword
arguments``) and declares one outcome:

* ``Raises``: a :class:`CohortError` whose message holds ``text`` and names the file, the rows
  (CSV line numbers: data row k is line k + 2; Parquet record k + 1) and the column, where they
  apply;
* ``Reads``: the input is accepted, and ``check(cohort)`` asserts the documented handling (what
  was sorted, converted, merged, removed or noted on the cohort).

Run ``.venv/bin/python tests/data/bad_input_corpus.py`` for the table of cases and outcomes;
``test_data_corpus.py`` asserts them. ``big_cohort`` builds the 5,000-subject x 200-step case.
"""

import gzip
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from twinjax.data import Cohort, data_summary, exclude_unsplittable

SUBJECTS, VARIABLES, TIMES = ["a", "b", "c"], ["bp", "hr"], np.arange(6.0)


def obs_frame() -> pd.DataFrame:
    """3 subjects x 2 variables x 6 times; row i*12 + j*6 + t holds 100 i + 10 j + t."""
    rows = [(s, t, v, 100.0 * i + 10 * j + t) for i, s in enumerate(SUBJECTS)
            for j, v in enumerate(VARIABLES) for t in TIMES]  # fmt: skip
    return pd.DataFrame(rows, columns=["subject_id", "time", "variable", "value"])


def itv_frame() -> pd.DataFrame:
    return pd.DataFrame(
        {"subject_id": ["a", "b", "c"], "time": [1.0, 2.0, 3.0], "kind": ["dose", "dose", "meal"],
         "amount": [1.0, 2.0, 5.0]}
    )  # fmt: skip


def static_frame() -> pd.DataFrame:
    return pd.DataFrame({"subject_id": SUBJECTS, "age": [30.0, 40.0, 50.0], "wt": [70.0, 80, 90]})


def row(i: int, j: int, t: int) -> int:
    """The observations row of subject i, variable j, time t."""
    return i * 12 + j * 6 + t


def line(r: int) -> int:
    """CSV line number of data row r."""
    return r + 2


def write(df: pd.DataFrame, path: Path, **kw) -> Path:
    name = path.name
    if name.endswith(".parquet"):
        df.to_parquet(path, index=False)
    elif name.endswith(".zst"):
        import pyarrow as pa

        with pa.CompressedOutputStream(str(path), "zstd") as f:
            f.write(df.to_csv(index=False, **kw).encode())
    else:
        df.to_csv(path, index=False, **kw)
    return path


def text(path: Path, content: str | bytes) -> Path:
    path.write_bytes(content if isinstance(content, bytes) else content.encode())
    return path


def clean(tmp: Path) -> dict:
    return {
        "observations": write(obs_frame(), tmp / "obs.csv"),
        "interventions": write(itv_frame(), tmp / "itv.csv"),
        "static": write(static_frame(), tmp / "static.csv"),
    }


def reference() -> Cohort:
    from twinjax.data import read_cohort

    return read_cohort(obs_frame(), itv_frame(), static_frame())


@dataclass(frozen=True)
class Raises:
    text: str
    file: str | None = None  # the file name the message must hold
    rows: list | None = None
    column: str | None = None


@dataclass(frozen=True)
class Reads:
    handling: str  # the documented handling, in words
    check: Callable[[Cohort], None]


@dataclass(frozen=True)
class Case:
    name: str
    build: Callable[[Path], dict]
    outcome: Raises | Reads


def with_obs(change: Callable[[pd.DataFrame], pd.DataFrame], name="obs.csv", **kw):
    """Clean tables with the observations changed (and written as ``name``)."""

    def build(tmp: Path) -> dict:
        paths = clean(tmp)
        paths["observations"] = write(change(obs_frame()), tmp / name, **kw)
        return paths

    return build


def with_table(table: str, change, name: str, *, only_obs: bool = False, **options):
    def build(tmp: Path) -> dict:
        paths = {"observations": clean(tmp)["observations"]} if only_obs else clean(tmp)
        frame = {"observations": obs_frame, "interventions": itv_frame, "static": static_frame}
        paths[table] = write(change(frame[table]()), tmp / name)
        return {**paths, **options}

    return build


def raw(table: str, content, name: str, **options):
    def build(tmp: Path) -> dict:
        paths = clean(tmp)
        paths[table] = text(tmp / name, content)
        return {**paths, **options}

    return build


def setv(r: int, col: str, value):
    def change(df):
        df = df.astype({col: object})
        df.loc[r, col] = value
        return df

    return change


def same_arrays(c: Cohort) -> None:
    """The clean cohort's grid, values (and interventions and covariates, if read)."""
    ref = reference()
    for k in ("values", "mask", "lengths", "interventions", "static"):
        if getattr(c, k).size or k in ("values", "mask", "lengths"):
            np.testing.assert_array_equal(getattr(c, k), getattr(ref, k), err_msg=k)


def same_as_reference(c: Cohort) -> None:
    """``same_arrays``, the same ids and variables, and time origins."""
    same_arrays(c)
    ref = reference()
    assert c.subject_ids == ref.subject_ids and c.variables == ref.variables
    np.testing.assert_array_equal(c.t0, ref.t0)


def check(*conditions):
    def run(c):
        for cond in conditions:
            cond(c)

    return run


def meta_is(key, value):
    def cond(c):
        assert c.meta[key] == value, (key, c.meta[key])

    return cond


def note_has(part):
    def cond(c):
        assert any(part in n for n in c.meta["notes"]), c.meta["notes"]

    return cond


def iso(df, tz: str = ""):
    stamps = pd.Timestamp("2025-01-01") + pd.to_timedelta(df.time, unit="h")
    return df.assign(time=stamps.dt.strftime("%Y-%m-%dT%H:%M:%S") + tz)


def stamps(df, tz=None):
    t = pd.Timestamp("2025-01-01") + pd.to_timedelta(df.time, unit="h")
    return df.assign(time=t.dt.tz_localize(tz) if tz else t)


def irregular(df):
    """Every row jittered inside its cell, plus a second reading in every 'bp' cell of 'a'."""
    jitter = np.random.default_rng(0).uniform(0.05, 0.9, len(df))
    extra = df[(df.subject_id == "a") & (df.variable == "bp")].assign(value=lambda d: d.value + 2)
    return pd.concat([df.assign(time=df.time + jitter), extra.assign(time=extra.time + 0.95)])


def _irregular_check(c: Cohort) -> None:
    ref = reference()
    assert c.meta["merged_observations"] == 6  # the 6 extra 'bp' readings of 'a'
    np.testing.assert_allclose(c.values[0, :6, 0], ref.values[0, :6, 0] + 1.0)  # mean of v, v+2
    np.testing.assert_array_equal(c.mask, ref.mask)


def _one_subject(df):
    return df[df.subject_id == "a"]


def _one_observation(df):
    return pd.concat([df[df.subject_id != "c"], df[df.subject_id == "c"].iloc[:1]])


def _one_obs_check(c: Cohort) -> None:
    assert c.lengths.tolist() == [6, 6, 1]
    kept = exclude_unsplittable(c, val_fraction=0.15, test_fraction=0.15)
    assert kept.subject_ids == ("a", "b")
    assert kept.meta["excluded_subjects"][0]["subject"] == "c"


def ids(values):
    mapping = dict(zip(SUBJECTS, values, strict=True))
    return lambda df: df.assign(subject_id=df.subject_id.map(mapping))


def ids_are(*values):
    def cond(c):
        assert c.subject_ids == tuple(values), c.subject_ids

    return cond


def _mixed_ids(tmp: Path) -> dict:
    obs = obs_frame().assign(subject_id=lambda d: d.subject_id.map({"a": 1, "b": 2, "c": 3}))
    static = static_frame().assign(subject_id=["1", "2", "3"])
    return {"observations": write(obs, tmp / "obs.parquet"),
            "static": write(static, tmp / "static.csv")}  # fmt: skip


def _categorical(tmp: Path) -> dict:
    static = static_frame().assign(sex=["F", "M", "F"])
    return {"observations": write(obs_frame(), tmp / "obs.csv"),
            "static": write(static, tmp / "static.csv")}  # fmt: skip


def _categorical_check(c: Cohort) -> None:
    assert c.static_names == ("age", "wt", "sex=F", "sex=M")
    np.testing.assert_array_equal(c.static[:, 2:], [[1, 0], [0, 1], [1, 0]])
    assert c.meta["static_levels"] == {"sex": ["F", "M"]}


def _categorical_nan_dropped(tmp: Path) -> dict:
    static = static_frame().assign(sex=["F", None, "M"])
    return {"observations": write(obs_frame(), tmp / "obs.csv"),
            "static": write(static, tmp / "static.csv"), "drop_bad_rows": True}  # fmt: skip


def _unseen_level(tmp: Path) -> dict:
    return {**_categorical(tmp), "static_levels": {"sex": ["F"]}}


def _latin1(tmp: Path) -> dict:
    obs = obs_frame().assign(
        subject_id=lambda d: d.subject_id.map({"a": "José", "b": "b", "c": "c"})
    )
    return {"observations": text(tmp / "obs.csv", obs.to_csv(index=False).encode("latin-1"))}


def _crlf(tmp: Path) -> dict:
    return {
        "observations": text(
            tmp / "obs.csv", obs_frame().to_csv(index=False, lineterminator="\r\n")
        )
    }


def _bom(tmp: Path) -> dict:
    return {
        "observations": text(
            tmp / "obs.csv", b"\xef\xbb\xbf" + obs_frame().to_csv(index=False).encode()
        )
    }


def _blank_lines(tmp: Path) -> dict:
    lines = obs_frame().to_csv(index=False).splitlines()
    lines.insert(3, "")
    lines[5] = lines[5].rsplit(",", 1)[0] + ",bad"  # data row 3 is on line 6 after the blank
    return {"observations": text(tmp / "obs.csv", "\n".join(lines) + "\n")}


def _dir(tmp: Path) -> dict:
    (tmp / "exports").mkdir()
    write(obs_frame(), tmp / "exports" / "obs.csv")
    return {"observations": tmp / "exports"}


def _missing(tmp: Path) -> dict:
    return {"observations": tmp / "no_such_obs.csv"}


def _corrupt_gzip(tmp: Path) -> dict:
    return {"observations": text(tmp / "obs.csv.gz", b"not gzip at all")}


def _gzip(tmp: Path) -> dict:
    path = tmp / "obs.csv.gz"
    path.write_bytes(gzip.compress(obs_frame().to_csv(index=False).encode()))
    return {"observations": path, "interventions": clean(tmp)["interventions"],
            "static": write(static_frame(), tmp / "static.parquet")}  # fmt: skip


def obs_only(change, **options):
    """An observations-only cohort (``change`` applied), with read_cohort ``options``."""
    return lambda tmp: {"observations": write(change(obs_frame()), tmp / "obs.csv"), **options}


def _sparse_check(c: Cohort) -> None:
    summary = data_summary(c, target=0, val_fraction=0.15, test_fraction=0.15)
    assert c.n_steps == 5 * 3600 + 1 and summary["fraction_observed"] < 0.001
    assert "only 0.03% observed" in summary["warnings"][0] and "3600" in summary["warnings"][0]


def _epoch_seconds(tmp: Path) -> dict:
    return {"observations": write(obs_frame().assign(time=lambda d: 1.7e9 + d.time * 3600),
                                  tmp / "obs.csv")}  # fmt: skip


def _absolute(tmp: Path) -> dict:
    obs = obs_frame().assign(time=lambda d: d.time + d.subject_id.map({"a": 0, "b": 2, "c": 4}))
    return {"observations": write(obs, tmp / "obs.csv"), "origin": "absolute"}


def _absolute_check(c: Cohort) -> None:
    assert c.t0.tolist() == [0.0, 0.0, 0.0] and c.lengths.tolist() == [6, 8, 10]
    assert not c.mask[1, :2].any() and c.mask[1, 2:8].all()


def _iso_itv_numbers(tmp: Path) -> dict:
    return {"observations": write(iso(obs_frame()), tmp / "obs.csv"),
            "interventions": write(itv_frame(), tmp / "itv.csv"), "step": "1h"}  # fmt: skip


def _t0_is(value):
    def cond(c):
        np.testing.assert_allclose(c.t0, value)

    return cond


JAN1 = pd.Timestamp("2025-01-01").timestamp()  # seconds since 1970 of 2025-01-01T00:00 (UTC)


def _reversed(df):
    return df.iloc[::-1]


def _shuffled(df):
    return df.sample(frac=1.0, random_state=3)


def _repeats(df):
    return pd.concat([df, df.iloc[[0, 5, 17]]])


def _conflict(df):
    return pd.concat([df, df.iloc[[7]].assign(value=-1.0)], ignore_index=True)


def _renamed(**names):
    return lambda df: df.rename(columns=names)


def _drop(col):
    return lambda df: df.drop(columns=col)


O, ITV, ST = "observations", "interventions", "static"  # noqa: E741
HEADER = [1]

CASES = [
    # --- files that cannot be read -------------------------------------------------------------
    Case("empty_file", raw(O, "", "obs.csv"), Raises("is empty", "obs.csv")),
    Case("header_only_observations", raw(O, "subject_id,time,variable,value\n", "obs.csv"),
         Raises("has no data rows", "obs.csv")),
    Case("header_only_interventions", raw(ITV, "subject_id,time,kind,amount\n", "itv.csv"),
         Raises("has no data rows", "itv.csv")),
    Case("header_only_static", raw(ST, "subject_id,age\n", "static.csv"),
         Raises("has no data rows", "static.csv")),
    Case("missing_path", _missing, Raises("no such observations file", "no_such_obs.csv")),
    Case("directory_not_file", _dir, Raises("is a directory", "exports")),
    Case("unsupported_suffix", raw(O, "x", "obs.xlsx"), Raises("unsupported file type", "obs.xlsx")),
    Case("ragged_csv", raw(O, "subject_id,time,variable,value\na,0,x,1\na,1,x,2,9\n", "obs.csv"),
         Raises("cannot read the observations table", "obs.csv")),
    Case("corrupt_parquet", raw(O, b"PAR1 garbage", "obs.parquet"),
         Raises("cannot read the observations table as Parquet", "obs.parquet")),
    Case("corrupt_gzip", _corrupt_gzip, Raises("cannot read or decompress", "obs.csv.gz")),
    Case("wrong_encoding_given", lambda tmp: {**_latin1(tmp), "encoding": "utf-8"},
         Raises("cannot decode the file as utf-8", "obs.csv")),
    # --- columns --------------------------------------------------------------------------------
    Case("missing_value_column", with_obs(_drop("value")),
         Raises("missing required column", "obs.csv", HEADER, "value")),
    Case("renamed_subject_column", with_obs(_renamed(subject_id="pid")),
         Raises("pass subject_col=<its name>", "obs.csv", HEADER, "subject_id")),
    Case("renamed_subject_column_given",
         lambda tmp: {"observations": write(obs_frame().rename(columns={"subject_id": "pid"}),
                                            tmp / "obs.csv"), "subject_col": "pid"},
         Reads("subject_col names the column", same_as_reference)),
    Case("renamed_time_column_given",
         lambda tmp: {"observations": write(obs_frame().rename(columns={"time": "hours"}),
                                            tmp / "obs.csv"), "time_col": "hours"},
         Reads("time_col names the column", same_as_reference)),
    Case("unknown_column", with_obs(lambda d: d.assign(unit="mmHg")),
         Raises("unknown column", "obs.csv", HEADER, "unit")),
    Case("static_missing_subject_column", with_table(ST, _drop("subject_id"), "static.csv"),
         Raises("missing required column", "static.csv", HEADER, "subject_id")),
    # --- values ---------------------------------------------------------------------------------
    Case("non_numeric_value", with_obs(setv(row(0, 1, 2), "value", "high")),
         Raises("non-numeric value", "obs.csv", [line(row(0, 1, 2))], "value")),
    Case("non_numeric_value_parquet", with_obs(lambda d: setv(4, "value", "high")(d).astype(
        {"value": str}), "obs.parquet"), Raises("non-numeric value", "obs.parquet", [5], "value")),
    Case("nan_value", with_obs(setv(7, "value", np.nan)),
         Raises("missing value", "obs.csv", [line(7)], "value")),
    Case("inf_value", with_obs(setv(3, "value", np.inf)),
         Raises("infinite value", "obs.csv", [line(3)], "value")),
    Case("value_1e300", with_obs(setv(9, "value", 1e300)),
         Raises("float32-safe range", "obs.csv", [line(9)], "value")),
    Case("value_1e30", with_obs(setv(10, "value", 1e30)),
         Raises("float32-safe range", "obs.csv", [line(10)], "value")),
    Case("amount_1e300", with_table(ITV, setv(1, "amount", 1e300), "itv.csv"),
         Raises("float32-safe range", "itv.csv", [line(1)], "amount")),
    Case("static_1e300", with_table(ST, setv(2, "age", -1e300), "static.csv"),
         Raises("float32-safe range", "static.csv", [line(2)], "age")),
    Case("boolean_values", with_obs(lambda d: d.assign(value=d.value > 250)),
         Reads("booleans read as 0/1, noted", check(note_has("boolean, read as 0/1"),
                                                   lambda c: set(np.unique(c.values)) <= {0, 1}))),
    # --- times ----------------------------------------------------------------------------------
    Case("negative_time", with_obs(setv(0, "time", -1.0)),
         Raises("negative time", "obs.csv", [line(0)], "time")),
    Case("nan_time", with_obs(setv(2, "time", np.nan)),
         Raises("missing value", "obs.csv", [line(2)], "time")),
    Case("inf_time", with_obs(setv(2, "time", np.inf)),
         Raises("infinite value", "obs.csv", [line(2)], "time")),
    Case("non_numeric_time", with_obs(setv(5, "time", "noon")),
         Raises("non-numeric value", "obs.csv", [line(5)], "time")),
    Case("conflicting_duplicate", with_obs(_conflict),
         Raises("duplicate timestamp with a different value", "obs.csv", [line(36)], "time")),
    Case("exact_repeats", with_obs(_repeats),
         Reads("exact repeats removed and counted",
               check(same_as_reference, meta_is("duplicate_rows_removed", 3)))),
    Case("unsorted_rows", with_obs(_shuffled),
         Reads("rows sorted on read", check(same_as_reference))),
    Case("latest_first_rows", with_obs(_reversed),
         Reads("rows sorted on read", check(same_as_reference))),
    Case("unsorted_with_drop_bad_rows", lambda tmp: {**with_obs(_shuffled)(tmp), "drop_bad_rows": True},
         Reads("nothing dropped", check(same_as_reference,
                                        lambda c: c.meta["dropped_rows"]["count"] == 0))),
    Case("iso_datetimes", obs_only(iso, step="1h"),
         Reads("ISO-8601 text read as seconds since 1970; step 1h",
               check(same_arrays, _t0_is(JAN1), lambda c: c.step == 3600.0))),
    Case("iso_datetimes_with_offset", obs_only(lambda d: iso(d, "+01:00"), step="60min"),
         Reads("zoned times read in UTC", check(same_arrays, _t0_is(JAN1 - 3600)))),
    Case("iso_datetimes_numeric_step", obs_only(iso),
         Raises("must be a duration", "obs.csv", None, "time")),
    Case("iso_datetime_bad_cell", obs_only(lambda d: setv(4, "time", "yesterday")(iso(d)),
                                           step="1h"), Raises("not an ISO-8601 time", "obs.csv", [line(4)], "time")),
    Case("numeric_times_duration_step", lambda tmp: {**clean(tmp), "step": "1D"},
         Raises("must be a number in their unit", "obs.csv", None, "time")),
    Case("iso_observations_numeric_interventions", _iso_itv_numbers,
         Raises("times here are numbers but datetimes", "itv.csv", None, "time")),
    Case("parquet_timestamps", lambda tmp: {"observations": write(stamps(obs_frame()),
                                                                  tmp / "obs.parquet"), "step": "1h"},
         Reads("timestamps read as seconds since 1970", check(same_arrays, _t0_is(JAN1)))),
    Case("parquet_timestamps_zoned", lambda tmp: {"observations": write(
        stamps(obs_frame(), "Europe/Paris"), tmp / "obs.parquet"), "step": "1h"},
         Reads("zoned timestamps read in UTC", check(same_arrays, _t0_is(JAN1 - 3600)))),
    Case("irregular_times", lambda tmp: {**with_obs(irregular)(tmp), "origin": "absolute"}, Reads(
        "binned to the grid: mean within the cell, merged rows counted", _irregular_check)),
    Case("epoch_seconds_with_step_1", _epoch_seconds,
         Reads("read; the summary warns that the grid is sparse and names the gap", _sparse_check)),
    Case("grid_too_large", obs_only(setv(5, "time", 1e12)),
         Raises("the grid would be", "obs.csv", None, "time")),
    Case("absolute_origin", _absolute,
         Reads("one grid for all subjects from the cohort's first time", _absolute_check)),
    # --- subjects -------------------------------------------------------------------------------
    Case("one_subject", with_obs(_one_subject, "obs.csv"), Raises(
        "subject without observations", "itv.csv", [line(1), line(2)], "subject_id")),
    Case("one_subject_alone", lambda tmp: {"observations": write(_one_subject(obs_frame()),
                                                                 tmp / "obs.csv")},
         Reads("a one-subject cohort", ids_are("a"))),
    Case("one_observation_subject", lambda tmp: {"observations": write(
        _one_observation(obs_frame()), tmp / "obs.csv")},
         Reads("read (length 1); excluded by name before training", _one_obs_check)),
    Case("missing_subject_id", with_obs(setv(6, "subject_id", np.nan)),
         Raises("missing value", "obs.csv", [line(6)], "subject_id")),
    Case("unicode_ids", lambda tmp: {"observations": write(
        ids(["José", "李雷", "Zoë"])(obs_frame()), tmp / "obs.csv")},
         Reads("ids kept as text", ids_are("José", "Zoë", "李雷"))),
    Case("numeric_ids_keep_leading_zeros", lambda tmp: {"observations": write(
        ids(["007", "010", "2"])(obs_frame()), tmp / "obs.csv")},
         Reads("CSV ids read as text (leading zeros kept)", ids_are("007", "010", "2"))),
    Case("mixed_ids_across_tables", _mixed_ids,
         Reads("numeric and text ids matched as text", ids_are("1", "2", "3"))),
    Case("ids_in_static_only", with_table(ST, lambda d: pd.concat(
        [d, pd.DataFrame({"subject_id": ["z"], "age": [1.0], "wt": [1.0]})]), "static.csv"),
         Raises("subject without observations", "static.csv", [line(3)], "subject_id")),
    Case("ids_in_interventions_only", with_table(ITV, setv(1, "subject_id", "ghost"), "itv.csv"),
         Raises("unknown subject", "itv.csv", [line(1)], "subject_id")),
    Case("observed_subject_without_static", with_table(ST, lambda d: d.iloc[:2], "static.csv"),
         Raises("no static covariates for observed subject(s) ['c']", "static.csv", None,
                "subject_id")),
    # --- interventions --------------------------------------------------------------------------
    Case("negative_amount", with_table(ITV, setv(0, "amount", -1.0), "itv.csv"),
         Reads("kept as given, noted", note_has("1 negative amount(s)"))),
    Case("intervention_after_last_observation", with_table(ITV, setv(2, "time", 10000.0), "itv.csv"),
         Reads("left out of the grid, counted",
               check(meta_is("interventions_after_last_observation", 1),
                     lambda c: c.lengths.tolist() == [6, 6, 6]))),
    Case("intervention_before_first_observation", with_obs(
        lambda d: d.assign(time=d.time + 2 * (d.subject_id == "a"))),
         Reads("the grid starts at the intervention", check(
             _t0_is([1.0, 0.0, 0.0]), lambda c: c.lengths.tolist() == [7, 6, 6]))),
    Case("unknown_kind", lambda tmp: {**clean(tmp), "intervention_kinds": ["dose"]},
         Raises("unknown intervention kind", "itv.csv", [line(2)], "kind")),
    # --- static covariates ----------------------------------------------------------------------
    Case("static_nan", with_table(ST, setv(1, "age", np.nan), "static.csv"),
         Raises("missing value", "static.csv", [line(1)], "age")),
    Case("static_stray_string", with_table(ST, setv(1, "wt", "heavy"), "static.csv"),
         Raises("non-numeric value", "static.csv", [line(1)], "wt")),
    Case("static_duplicate_subject", with_table(ST, lambda d: pd.concat([d, d.iloc[[0]]]),
                                                "static.csv"),
         Raises("duplicate subject", "static.csv", [line(3)], "subject_id")),
    Case("static_categorical_strings", _categorical,
         Reads("one-hot, levels recorded (sex=F, sex=M)", _categorical_check)),
    Case("static_categorical_missing_dropped", _categorical_nan_dropped,
         Reads("subject without covariates dropped and reported", check(
             ids_are("a", "c"), lambda c: c.meta["dropped_rows"]["count"] > 0))),
    Case("static_unseen_level", _unseen_level,
         Raises("unseen level of the categorical covariate 'sex'", "static.csv", [line(1)], "sex")),
    # --- formats, encodings, delimiters ---------------------------------------------------------
    Case("semicolon_csv", with_obs(lambda d: d, sep=";"),
         Reads("delimiter found in the header, noted", check(same_as_reference,
                                                              note_has("separated by ';'")))),
    Case("semicolon_csv_sep_given", lambda tmp: {"observations": write(obs_frame(), tmp / "obs.csv", sep=";"), "sep": ";"},
         Reads("data.sep used", same_arrays)),
    Case("semicolon_tables_comma_sep_given", lambda tmp: {**with_obs(lambda d: d, sep=";")(tmp),
                                                          "sep": ","},
         Raises("looks separated by ';': pass sep=';'", "obs.csv", HEADER, "subject_id")),
    Case("tab_separated", with_obs(lambda d: d, "obs.tsv", sep="\t"),
         Reads("delimiter found in the header", same_as_reference)),
    Case("utf8_bom", _bom, Reads("byte-order mark skipped", same_arrays)),
    Case("crlf_line_endings", _crlf, Reads("CRLF read", same_arrays)),
    Case("blank_lines", _blank_lines, Raises("non-numeric value", "obs.csv", [6], "value")),
    Case("latin1_file", _latin1, Reads("read as Latin-1, noted", check(
        note_has("read as Latin-1"), ids_are("José", "b", "c")))),
    Case("gzip_csv", _gzip, Reads("gzip decompressed", same_as_reference)),
    Case("zstd_csv", with_obs(lambda d: d, "obs.csv.zst"), Reads("zstd decompressed (pyarrow)",
                                                                 same_as_reference)),
    Case("parquet_times_as_text", with_obs(lambda d: d.astype({"time": str}), "obs.parquet"),
         Reads("numeric text read as numbers", same_as_reference)),
    Case("parquet_float32_and_int_ids", lambda tmp: {"observations": write(obs_frame().astype(
        {"value": np.float32}).assign(subject_id=lambda d: d.subject_id.map({"a": 1, "b": 2,
                                                                             "c": 3})),
        tmp / "obs.parquet")}, Reads("integer ids and float32 values", ids_are(1, 2, 3))),
    Case("parquet_value_as_datetime", with_obs(lambda d: d.assign(value=pd.Timestamp("2025-01-01")),
                                               "obs.parquet"),
         Raises("dates/durations are not supported", "obs.parquet", None, "value")),
]  # fmt: skip


def run_case(case: Case, tmp: Path):
    """``("raises", error)`` or ``("reads", cohort)``; any other exception propagates."""
    from twinjax.data import CohortError, read_cohort

    kwargs = case.build(tmp)
    try:
        return "reads", read_cohort(**kwargs)
    except CohortError as e:
        return "raises", e


def big_cohort(tmp: Path, n: int = 5000, steps: int = 200) -> Path:
    """A 5,000-subject x 200-step observations file (3 variables, 70% observed), as Parquet."""
    rng = np.random.default_rng(0)
    i, t, f = np.nonzero(rng.random((n, steps, 3)) < 0.7)
    obs = pd.DataFrame({"subject_id": pd.Categorical.from_codes(i, [f"S{k:05d}" for k in range(n)]),
                        "time": t * 0.5, "variable": np.array(["bp", "hr", "temp"])[f],
                        "value": rng.normal(size=len(i))})  # fmt: skip
    return write(obs.sample(frac=1.0, random_state=0), tmp / "big.parquet")


def main() -> None:
    """Prints the table of cases and their outcomes."""
    print(f"{len(CASES)} cases\n")
    print("| case | outcome | message or handling |\n|---|---|---|")
    for case in CASES:
        with tempfile.TemporaryDirectory() as d:
            kind, result = run_case(case, Path(d))
        shown = str(result).replace(d, "<tmp>") if kind == "raises" else case.outcome.handling
        print(f"| {case.name} | {kind} | {shown[:150].replace('|', '/')} |")


if __name__ == "__main__":
    main()
