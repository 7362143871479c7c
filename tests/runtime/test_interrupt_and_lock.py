"""SIGINT/SIGTERM stop a checkpointed loop at a step (checkpoint, exact resume, whole loss
history); one run per directory (run.lock); a stale lock is taken over."""

import json
import logging
import os
import signal

import numpy as np
import pytest
from loop_state import start as _start
from loop_state import step

from twinjax.runtime import run_loop
from twinjax.runtime.interrupt import Interrupted, handled
from twinjax.runtime.lock import LOCK_FILE, RunLocked, run_lock


def _step(signal_at=None, signum=signal.SIGTERM):
    def step_fn(s):
        if signal_at is not None and int(s.step) + 1 == signal_at:
            os.kill(os.getpid(), signum)  # arrives during the step, as a user's Ctrl-C would
        return step(s)

    return step_fn


@pytest.mark.parametrize(("signum", "status"), [(signal.SIGINT, 130), (signal.SIGTERM, 143)])
def test_signal_stops_at_the_step_with_a_checkpoint_and_resume_is_exact(tmp_path, signum, status):
    kw = dict(every=5, check_every=2, progress=False)
    ref, ref_losses = run_loop(_start(), _step(), 12, checkpoint_dir=tmp_path / "ref", **kw)
    with pytest.raises(Interrupted) as stopped:
        run_loop(_start(), _step(7, signum), 12, checkpoint_dir=tmp_path / "run", **kw)
    assert stopped.value.exit_status == status
    assert "after step 7 of 12" in str(stopped.value)
    assert "rerun the same command to resume" in str(stopped.value)
    assert sorted(int(p.name) for p in (tmp_path / "run").iterdir() if p.name.isdigit()) == [5, 7]
    assert signal.getsignal(signum) is not None  # the previous handler is back
    out, losses = run_loop(_start(), _step(), 12, checkpoint_dir=tmp_path / "run", **kw)
    np.testing.assert_array_equal(np.asarray(out.params), np.asarray(ref.params))
    assert losses.shape == (12,)  # every step's loss, those before the stop included
    np.testing.assert_array_equal(losses, ref_losses)


def test_a_signal_outside_a_loop_raises_at_once():
    with pytest.raises(Interrupted) as stopped, handled():
        os.kill(os.getpid(), signal.SIGTERM)
        for _ in range(10_000_000):  # the handler runs between bytecodes
            pass
    assert stopped.value.exit_status == 143
    assert stopped.value.checkpoint is None


def test_a_second_run_in_a_held_directory_is_refused(tmp_path):
    with run_lock(tmp_path) as path:
        holder = json.loads(path.read_text())
        assert holder["pid"] == os.getpid()
        with pytest.raises(RunLocked, match=f"in use by another run \\(pid {os.getpid()} on"):
            with run_lock(tmp_path):
                pass
    assert not (tmp_path / LOCK_FILE).exists()  # released
    with run_lock(tmp_path):  # and free again
        pass


def test_a_stale_lock_of_a_dead_process_is_taken_over(tmp_path, caplog):
    stale = {"pid": 2**22 + 17, "host": "gone", "started": 0}
    (tmp_path / LOCK_FILE).write_text(json.dumps(stale))  # a killed run's file, no flock held
    with caplog.at_level(logging.WARNING), run_lock(tmp_path) as path:
        assert json.loads(path.read_text())["pid"] == os.getpid()
    assert "took over the lock" in caplog.text and "pid 4194321 on gone" in caplog.text
