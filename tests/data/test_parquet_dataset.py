"""Parquet datasets, subject chunks and process shares read the same cohort as one CSV read.

References: the CSV read of the same tables (the path every other data test checks), and the full
cohort's rows for each share. Tables are tiny (40 subjects), so each test takes well under a second.
"""

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from twinjax.data import CohortError, read_cohort
from twinjax.data.share import subject_share

N = 40


def _tables(seed: int = 0) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    rng = np.random.default_rng(seed)
    rows = [
        (f"s{i:03d}", 1.5 * t + i % 3, v, float(rng.normal()))
        for i in range(N)
        for v in ("hr", "glucose")
        for t in range(rng.integers(2, 8))
    ]
    obs = pd.DataFrame(rows, columns=["subject_id", "time", "variable", "value"])
    obs = obs.sample(frac=1.0, random_state=1).reset_index(drop=True)  # rows in any order
    itv = pd.DataFrame(
        {"subject_id": [f"s{i:03d}" for i in range(0, N, 3)], "time": 1.0, "kind": "dose"}
    ).assign(amount=2.0)
    sta = pd.DataFrame(
        {
            "subject_id": [f"s{i:03d}" for i in range(N)],
            "age": rng.normal(size=N),
            "sex": rng.choice(["f", "m"], N),
        }
    )
    return obs, itv, sta


@pytest.fixture
def files(tmp_path):
    """The tables as CSV, the observations also as one Parquet file of row groups and as a
    directory of three files (rows dealt round-robin, so a subject's rows span files)."""
    obs, itv, sta = _tables()
    obs.to_csv(tmp_path / "obs.csv", index=False)
    itv.to_csv(tmp_path / "itv.csv", index=False)
    sta.to_csv(tmp_path / "sta.csv", index=False)
    table = pa.Table.from_pandas(obs, preserve_index=False)
    pq.write_table(table, tmp_path / "obs.parquet", row_group_size=50)
    assert pq.ParquetFile(tmp_path / "obs.parquet").num_row_groups > 3
    (tmp_path / "obs").mkdir()
    for k in range(3):
        obs.iloc[k::3].to_parquet(tmp_path / "obs" / f"part-{k}.parquet", index=False)
    return tmp_path


def _assert_same(a, b):
    for key in ("values", "mask", "interventions", "static", "lengths", "t0"):
        np.testing.assert_array_equal(getattr(a, key), getattr(b, key), err_msg=key)
    for key in ("subject_ids", "variables", "intervention_kinds", "static_names"):
        assert getattr(a, key) == getattr(b, key), key
    for key in ("rows", "rows_in_grid", "merged_observations", "duplicate_rows_removed"):
        assert a.meta[key] == b.meta[key], key


def _read(files, obs, **kw):
    return read_cohort(files / obs, files / "itv.csv", files / "sta.csv", step=1.0, **kw)


@pytest.mark.parametrize("obs", ["obs.parquet", "obs"])
def test_parquet_file_and_directory_read_as_the_csv(files, obs):
    _assert_same(_read(files, obs), _read(files, "obs.csv"))


@pytest.mark.parametrize("obs", ["obs.parquet", "obs", "obs.csv"])
@pytest.mark.parametrize("chunk", [1, 7])
def test_chunked_read_equals_unchunked(files, obs, chunk):
    chunked = _read(files, obs, chunk_subjects=chunk)
    assert chunked.meta["chunks"]["count"] == -(-N // chunk)
    _assert_same(chunked, _read(files, obs))


def test_two_shares_are_disjoint_cover_everything_and_match_across_formats(files):
    whole = _read(files, "obs.csv")
    shares = []
    for k in range(2):
        share = _read(files, "obs", chunk_subjects=7, process_index=k, process_count=2)
        assert share.meta["share"]["process_index"] == k
        assert share.meta["share"]["subjects"] == share.n_individuals
        _assert_same(share, _read(files, "obs.csv", process_index=k, process_count=2))
        at = [whole.subject_ids.index(s) for s in share.subject_ids]
        for key in ("values", "mask", "interventions", "static", "lengths", "t0"):
            np.testing.assert_array_equal(getattr(share, key), getattr(whole.take(at), key))
        shares.append(set(share.subject_ids))
    assert not shares[0] & shares[1]
    assert shares[0] | shares[1] == set(whole.subject_ids)
    assert min(len(s) for s in shares) >= N // 4  # a split, not everything in one process
    rows = [_read(files, "obs", process_index=k, process_count=2).meta["rows"] for k in (0, 1)]
    assert rows[0]["observations"] + rows[1]["observations"] == whole.meta["rows"]["observations"]


def test_share_is_a_stable_function_of_the_id():
    """The values are fixed here: a salted or run-dependent hash would change them."""
    ids = ["s000", "s001", "s002", "s003", "s004", "s005", "7", "patient-ü"]
    assert subject_share(ids, 2).tolist() == [1, 0, 0, 0, 1, 0, 1, 0]
    assert subject_share(ids, 3).tolist() == [0, 2, 2, 2, 0, 0, 1, 0]
    # the id's text decides, whatever its type or encoding in the file
    assert subject_share(pa.array([7]), 3).tolist() == subject_share(["7"], 3).tolist()
    coded = pa.array(ids).dictionary_encode()
    assert subject_share(coded, 3).tolist() == subject_share(ids, 3).tolist()
    assert subject_share([None, "s001"], 2).tolist()[0] == 0  # a missing id goes to process 0


def test_bad_row_in_a_dataset_names_file_row_and_column(files):
    obs, _, _ = _tables()
    obs = obs.astype({"value": str})  # numbers as text, as an export might give them
    by_subject = obs.subject_id.str[1:].astype(int) % 3  # file k: the subjects i with i % 3 == k
    bad = obs.index[by_subject == 1][2]  # file part-1's 3rd record
    obs.loc[bad, "value"] = "high"
    (files / "by_subject").mkdir()
    for k in range(3):
        part = obs[by_subject == k]
        part.to_parquet(files / "by_subject" / f"part-{k}.parquet", index=False)
    with pytest.raises(CohortError) as err:
        _read(files, "by_subject", chunk_subjects=1)  # a chunk's rows all in one file
    assert err.value.source.endswith("part-1.parquet") and err.value.rows == [3]
    assert err.value.column == "value" and "non-numeric" in str(err.value)
    # a subject's rows spread over files: the row names its file
    for k in range(3):
        obs.iloc[k::3].to_parquet(files / "obs" / f"part-{k}.parquet", index=False)
    with pytest.raises(CohortError) as err:
        _read(files, "obs")
    where = obs.index.get_loc(bad)
    assert err.value.rows == [f"part-{where % 3}.parquet:{where // 3 + 1}"]
    assert err.value.column == "value"


def test_dropped_rows_are_counted_not_lost(files):
    obs, _, _ = _tables()
    obs.loc[[2, 11], "time"] = -1.0  # negative times: bad rows
    obs.to_parquet(files / "bad.parquet", index=False)
    cohort = _read(files, "bad.parquet", chunk_subjects=5, drop_bad_rows=True)
    dropped = cohort.meta["dropped_rows"]
    assert dropped["count"] == 2 and sorted(r for e in dropped["entries"] for r in e["rows"]) == [
        3,
        12,
    ]
    assert cohort.meta["rows_in_grid"]["observations"] + 2 == len(obs)
    _assert_same(cohort, read_cohort(files / "bad.parquet", files / "itv.csv", files / "sta.csv",
                                     step=1.0, drop_bad_rows=True))  # fmt: skip
