"""Alignment to the grid (vs a serial reference), drop_bad_rows, and to_long round trips."""

import logging

import numpy as np
import pandas as pd
import pytest

from twinjax.data.cohort import Cohort
from twinjax.data.io import read_cohort, to_long


def random_long(seed, n=5, variables=("bp", "hr", "temp"), kinds=("dose", "meal")):
    """Irregular long tables: several observations may share a grid cell (step 0.5)."""
    rng = np.random.default_rng(seed)
    rows, itv = [], []
    for i in range(n):
        for v in variables:
            times = np.sort(
                rng.choice(np.arange(0, 40) * 0.125, size=rng.integers(3, 12), replace=False)
            )
            rows += [(f"p{i}", float(t), v, float(rng.normal())) for t in times + 0.25 * i]
        for _ in range(3):
            itv.append(
                (f"p{i}", float(rng.integers(0, 36) * 0.125), rng.choice(kinds), rng.random())
            )
    obs = pd.DataFrame(rows, columns=["subject_id", "time", "variable", "value"])
    itv = pd.DataFrame(itv, columns=["subject_id", "time", "kind", "amount"])
    static = pd.DataFrame({"subject_id": [f"p{i}" for i in range(n)], "age": rng.normal(size=n)})
    return obs, itv, static


def serial_align(obs, itv, step):
    """Reference alignment with plain Python loops over subjects."""
    subjects = sorted(obs.subject_id.unique())
    variables = sorted(obs.variable.unique())
    kinds = sorted(itv.kind.unique())
    t0 = {}
    for s in subjects:
        t0[s] = min(obs.time[obs.subject_id == s].min(), itv.time[itv.subject_id == s].min())
    lengths = []  # the last observation's cell + 1 (later interventions are left out)
    for s in subjects:
        lengths.append(int(np.floor((obs.time[obs.subject_id == s].max() - t0[s]) / step)) + 1)
    T = max(lengths)
    sums = np.zeros((len(subjects), T, len(variables)))
    counts = np.zeros_like(sums)
    amounts = np.zeros((len(subjects), T, len(kinds)))
    for r in obs.itertuples():
        i, f = subjects.index(r.subject_id), variables.index(r.variable)
        t = int(np.floor((r.time - t0[r.subject_id]) / step))
        sums[i, t, f] += r.value
        counts[i, t, f] += 1
    for r in itv.itertuples():
        i, u = subjects.index(r.subject_id), kinds.index(r.kind)
        t = int(np.floor((r.time - t0[r.subject_id]) / step))
        if t < lengths[i]:
            amounts[i, t, u] += r.amount
    values = np.where(counts > 0, sums / np.maximum(counts, 1), 0.0)
    return values, counts > 0, amounts, np.array(lengths), np.array([t0[s] for s in subjects])


def test_alignment_matches_serial_reference():
    obs, itv, static = random_long(0)
    late = pd.DataFrame([("p1", 99.0, "dose", 1.0)], columns=itv.columns)
    itv = pd.concat([itv, late], ignore_index=True)  # after p1's last observation
    c = read_cohort(obs, itv, static, step=0.5)
    assert c.meta["interventions_after_last_observation"] == 1
    values, mask, amounts, lengths, t0 = serial_align(obs, itv, 0.5)
    np.testing.assert_array_equal(c.mask, mask)
    np.testing.assert_allclose(c.values, values, rtol=1e-6, atol=1e-6)
    np.testing.assert_allclose(c.interventions, amounts, rtol=1e-6)
    np.testing.assert_array_equal(c.lengths, lengths)
    np.testing.assert_array_equal(c.t0, t0)
    assert c.meta["merged_observations"] == len(obs) - mask.sum() > 0
    assert not c.mask[c.valid() == 0].any()  # padding is never observed
    ages = static.set_index("subject_id").loc[list(c.subject_ids), "age"].to_numpy()
    np.testing.assert_allclose(c.static[:, 0], ages, rtol=1e-6)
    assert c.variables == ("bp", "hr", "temp") and c.static_names == ("age",)


def test_small_cohort_by_hand():
    obs = pd.DataFrame(
        {
            "id": [7, 7, 7, 8],
            "t": [2.0, 3.5, 3.9, 0.0],
            "var": ["x", "x", "x", "x"],
            "val": [1.0, 2.0, 4.0, 5.0],
        }
    )
    c = read_cohort(obs, subject_col="id", time_col="t", variable_col="var", value_col="val")
    np.testing.assert_array_equal(c.values[:, :, 0], [[1.0, 3.0], [5.0, 0.0]])
    np.testing.assert_array_equal(c.lengths, [2, 1])
    np.testing.assert_array_equal(c.t0, [2.0, 0.0])
    assert c.subject_ids == (7, 8) and c.static.shape == (2, 0)
    assert c.meta["merged_observations"] == 1 and c.meta["dropped_rows"]["count"] == 0


def test_drop_bad_rows_drops_exactly_the_bad_rows(tmp_path, caplog):
    obs, itv, static = random_long(1, n=3)
    bad_obs = {3: ("value", "n/a"), 9: ("time", -2.0), 15: ("value", np.inf)}
    dirty = obs.astype({"value": object, "time": object})
    for row, (col, val) in bad_obs.items():
        dirty.loc[row, col] = val
    dup = obs.iloc[[20]].assign(value=obs.value[20] + 1)  # row 20's time, another value
    dirty = pd.concat([dirty.iloc[:21], dup, dirty.iloc[21:]], ignore_index=True)
    itv_dirty = pd.concat(
        [
            itv,
            pd.DataFrame(
                [("p1", 1.0, "surgery", 1.0), ("ghost", 1.0, "dose", 1.0)], columns=itv.columns
            ),
        ],
        ignore_index=True,
    )
    static_dirty = pd.concat(
        [static, pd.DataFrame({"subject_id": ["p9"], "age": [1.0]})], ignore_index=True
    )
    paths = [tmp_path / n for n in ("obs.csv", "itv.csv", "static.parquet")]
    dirty.to_csv(paths[0], index=False)
    itv_dirty.to_csv(paths[1], index=False)
    static_dirty.to_parquet(paths[2], index=False)

    with caplog.at_level(logging.WARNING):
        c = read_cohort(*paths, step=0.5, intervention_kinds=["dose", "meal"], drop_bad_rows=True)
    clean = read_cohort(
        obs.drop(index=list(bad_obs)), itv, static, step=0.5, intervention_kinds=["dose", "meal"]
    )
    for k in ("values", "mask", "interventions", "static", "lengths", "t0"):
        np.testing.assert_array_equal(getattr(c, k), getattr(clean, k), err_msg=k)

    report = c.meta["dropped_rows"]
    got = {
        (e["source"].split("/")[-1], r, e["column"]) for e in report["entries"] for r in e["rows"]
    }
    expected = {
        ("obs.csv", 3 + 2, "value"),
        ("obs.csv", 9 + 2, "time"),
        ("obs.csv", 15 + 2, "value"),
    }
    expected |= {("obs.csv", 21 + 2, "time")}  # the inserted conflicting duplicate, line 23
    expected |= {("itv.csv", len(itv) + 2, "kind"), ("itv.csv", len(itv) + 3, "subject_id")}
    expected |= {("static.parquet", len(static) + 1, "subject_id")}
    assert got == expected and report["count"] == 7
    assert "dropped 7 bad row(s)" in caplog.text


def test_drop_cascades_to_subject_without_static(tmp_path):
    obs, itv, static = random_long(2, n=3)
    static = static.astype({"age": object})
    static.loc[1, "age"] = "unknown"  # p1's covariates are bad -> p1 cannot be modelled
    c = read_cohort(obs, itv, static, drop_bad_rows=True)
    assert c.subject_ids == ("p0", "p2")
    reasons = {e["reason"].split(" (")[0]: e["count"] for e in c.meta["dropped_rows"]["entries"]}
    assert reasons["non-numeric value; values must be numbers"] == 1
    assert reasons["subject without observations"] == (itv.subject_id == "p1").sum()
    no_static = [e for e in c.meta["dropped_rows"]["entries"] if "no static" in e["reason"]]
    assert no_static[0]["count"] == (obs.subject_id == "p1").sum()


@pytest.mark.parametrize("fmt", ["frame", "csv", "parquet"])
def test_round_trip_to_long_read_cohort(tmp_path, fmt):
    obs, itv, static = random_long(3)
    c = read_cohort(obs, itv, static, step=0.5)
    tables = to_long(c)
    if fmt != "frame":
        paths = [tmp_path / f"{n}.{fmt}" for n in ("obs", "itv", "static")]
        for df, p in zip(tables, paths, strict=True):
            df.to_csv(p, index=False) if fmt == "csv" else df.to_parquet(p, index=False)
        tables = paths
    back = read_cohort(*tables, step=c.step)
    for k in ("values", "mask", "interventions", "static", "lengths", "t0"):
        np.testing.assert_array_equal(getattr(back, k), getattr(c, k), err_msg=k)
    assert back.subject_ids == c.subject_ids and back.variables == c.variables
    assert back.intervention_kinds == c.intervention_kinds and back.meta["merged_observations"] == 0


def test_round_trip_keeps_axis_order_of_a_built_cohort():
    """A cohort built directly (unsorted names, a never-observed variable) survives as DataFrames."""
    rng = np.random.default_rng(4)
    n, t, f = 3, 6, 3
    mask = rng.random((n, t, f)) < 0.5
    mask[:, 0, 0] = True
    lengths = np.array([6, 4, 5], np.int32)
    mask[np.arange(n), lengths - 1, 1] = True
    mask &= np.arange(t)[None, :, None] < lengths[:, None, None]
    mask[:, :, 2] = False  # "a" is never observed
    values = np.where(mask, rng.normal(size=mask.shape), 0).astype(np.float32)
    itv = np.where(mask[..., :1], rng.random((n, t, 1)), 0).astype(np.float32)
    c = Cohort(
        values=values,
        mask=mask,
        interventions=itv,
        static=rng.normal(size=(n, 2)).astype(np.float32),
        lengths=lengths,
        subject_ids=("zed", "amy", "bob"),
        variables=("z", "m", "a"),
        intervention_kinds=("drug",),
        static_names=("w", "h"),
        t0=np.array([0.0, 10.0, 3.5]),
        step=0.25,
    )
    back = read_cohort(*to_long(c), step=c.step)
    for k in ("values", "mask", "interventions", "static", "lengths", "t0"):
        np.testing.assert_array_equal(getattr(back, k), getattr(c, k), err_msg=k)
    assert back.subject_ids == c.subject_ids and back.variables == c.variables
    assert back.static_names == c.static_names


def test_numeric_and_string_subject_ids_are_matched_as_strings(tmp_path):
    obs, itv, static = random_long(5, n=3)
    obs["subject_id"] = obs.subject_id.str[1:].astype(int)  # 0, 1, 2 as integers
    static.assign(subject_id=static.subject_id.str[1:]).to_csv(
        tmp_path / "static.csv", index=False
    )  # "0", "1", "2" as strings
    c = read_cohort(obs, static=tmp_path / "static.csv")
    assert c.subject_ids == ("0", "1", "2")
    np.testing.assert_allclose(c.static[:, 0], static.age.to_numpy(), rtol=1e-6)


def test_rows_in_any_order_and_exact_repeats():
    """Shuffled rows align as sorted ones; an exact repeat is removed and counted."""
    obs, itv, static = random_long(6, n=3)
    c = read_cohort(obs, itv, static, step=0.5)
    shuffled = obs.sample(frac=1.0, random_state=0)
    repeated = pd.concat([shuffled, shuffled.iloc[:4]], ignore_index=True)
    back = read_cohort(repeated, itv.iloc[::-1], static, step=0.5)
    for k in ("values", "mask", "interventions", "static", "lengths", "t0"):
        np.testing.assert_array_equal(getattr(back, k), getattr(c, k), err_msg=k)
    assert back.meta["duplicate_rows_removed"] == 4 and c.meta["duplicate_rows_removed"] == 0
    assert any("4 exact repeat" in n for n in back.meta["notes"])
