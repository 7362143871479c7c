"""A damaged latest checkpoint (a truncated or corrupted file in ``<dir>/<step>/``): the loop
says so, sets it aside and resumes from the one before, ending as an uninterrupted run."""

import logging

import numpy as np
import pytest
from loop_state import start as _start
from loop_state import step as _step

from twinjax.runtime import RunDirectoryError, run_loop


def _hook(done, state, loss):
    return {"done": done, "loss": None if loss is None else float(loss)}


def _loop(directory, records, **kw):
    hook = _hook if records is not None else None
    return run_loop(_start(), _step, 8, checkpoint_dir=directory, every=1, keep=3,
                    progress=False, on_step=hook, records=records, **kw)  # fmt: skip


def _damage(step_dir, how: str) -> None:
    if how == "truncate":  # the arrays' data files, cut in half
        files = list(step_dir.glob("*/d/*"))
        for f in files:
            f.write_bytes(f.read_bytes()[: f.stat().st_size // 2])
    else:  # a byte flipped in the middle of each item's index of the arrays
        files = list(step_dir.glob("*/manifest.ocdbt"))
        for f in files:
            data = bytearray(f.read_bytes())
            data[len(data) // 2] ^= 0xFF
            f.write_bytes(bytes(data))
    assert files


@pytest.mark.integration
@pytest.mark.parametrize("how", ["truncate", "corrupt"])
@pytest.mark.parametrize("with_records", [False, True])
def test_a_damaged_latest_checkpoint_resumes_from_the_one_before(tmp_path, caplog, how,
                                                                 with_records):  # fmt: skip
    new = lambda: [] if with_records else None
    ref_records = new()
    ref, ref_losses = _loop(tmp_path / "ref", ref_records)
    ckpt, records = tmp_path / "cut", new()
    _loop(ckpt, records, stop_after=5)  # checkpoints 3, 4, 5 kept
    _damage(ckpt / "5", how)
    records = new()
    with caplog.at_level(logging.WARNING, logger="twinjax.runtime.checkpoints"):
        state, losses = _loop(ckpt, records)
    assert f"checkpoint step 5 in {ckpt} does not read back (" in caplog.text
    assert "set aside as 5.damaged, resuming from step 4 instead" in caplog.text
    assert (ckpt / "5.damaged").is_dir()
    assert sorted(p.name for p in ckpt.iterdir() if p.name.isdigit()) == ["6", "7", "8"]
    for a, b in zip(state, ref, strict=True):
        np.testing.assert_array_equal(a, b)
    np.testing.assert_array_equal(losses, ref_losses)  # the whole curve, steps 1-8
    assert records == ref_records


def test_no_checkpoint_that_reads_back_is_refused_and_nothing_is_set_aside(tmp_path):
    _loop(tmp_path, None, stop_after=5)
    for step in ("3", "4", "5"):
        _damage(tmp_path / step, "truncate")
    with pytest.raises(RunDirectoryError, match=f"no checkpoint in {tmp_path} reads back .*"
                       "newest, step 5.*train.resume=false"):  # fmt: skip
        _loop(tmp_path, None)
    assert sorted(p.name for p in tmp_path.iterdir() if p.name[0].isdigit()) == ["3", "4", "5"]
