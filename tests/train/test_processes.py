"""The population twin trained by two processes (JAX's multi-process runtime on localhost, gloo
CPU collectives, 2 devices each: one mesh of 4 devices spanning both) equals the twin one
process trains on the whole cohort: the same losses and parameters to 1e-5 (float rounding of
sums taken over 4 devices in another order, over 4 Adam steps; the sharded-vs-one-device tests
use the same tolerance)."""

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import jax
import numpy as np
import pytest

from twinjax.train import fit_population

sys.path.insert(0, str(Path(__file__).parent))
from two_processes import OPTIONS, cohort  # noqa: E402

pytestmark = pytest.mark.integration  # two JAX processes start and compile (~20 s)
WORKER = Path(__file__).with_name("two_processes.py")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("localhost", 0))
        return s.getsockname()[1]


def test_two_processes_train_the_twin_one_process_trains(tmp_path):
    port, env = _free_port(), {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    procs = [
        subprocess.Popen([sys.executable, str(WORKER), str(i), str(port), str(tmp_path)],
                         env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        for i in (0, 1)
    ]  # fmt: skip
    logs = [p.communicate(timeout=300)[0] for p in procs]
    assert [p.returncode for p in procs] == [0, 0], "\n".join(x[-3000:] for x in logs)
    spec, arrays = cohort()
    params, losses = fit_population(
        jax.random.key(3), spec, arrays, OPTIONS, tmp_path / "one", devices=jax.devices()[:1]
    )
    one = {jax.tree_util.keystr(p): np.asarray(x)
           for p, x in jax.tree_util.tree_leaves_with_path(params)}  # fmt: skip
    for i in (0, 1):
        two = np.load(tmp_path / f"{i}.npz")
        np.testing.assert_allclose(two["losses"], losses, rtol=1e-5, atol=1e-5)
        assert set(two.files) == {"losses", *one}
        for name, value in one.items():
            np.testing.assert_allclose(two[name], value, rtol=1e-5, atol=1e-5, err_msg=name)
        assert "once each" in (tmp_path / f"{i}.txt").read_text()
    assert np.abs(losses[-1] - losses[0]) > 0  # it trained


def _start(i, port, out, steps):
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    return subprocess.Popen([sys.executable, str(WORKER), str(i), str(port), str(out), str(steps)],
                            env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)  # fmt: skip


def test_a_killed_process_ends_the_other_with_a_message_and_both_resume(tmp_path):
    """Process 1 is killed (SIGKILL) once a checkpoint exists: process 0 does not hang; JAX's
    distributed service ends it after the heartbeat timeout (10 s here) saying that another task
    died, after the fit's own line on what to do (rerun every process). Both rerun, resume from
    the last checkpoint and end with the twin of an uninterrupted one-process fit (1e-5)."""
    steps, port = 40, _free_port()
    procs = [_start(i, port, tmp_path, steps) for i in (0, 1)]
    deadline = time.monotonic() + 240
    while not any(p.name.isdigit() and int(p.name) >= 10 for p in
                  (tmp_path / "checkpoints").glob("*")):  # fmt: skip
        assert time.monotonic() < deadline and procs[0].poll() is None, procs[0].communicate()
        time.sleep(0.05)
    procs[1].send_signal(signal.SIGKILL)
    out = procs[0].communicate(timeout=120)[0]
    procs[1].communicate()
    assert procs[0].returncode != 0 and "another task died" in out, out[-3000:]
    assert "Rerun every process" in out or "rerun every process" in out, out[-3000:]
    port = _free_port()
    procs = [_start(i, port, tmp_path, steps) for i in (0, 1)]
    logs = [p.communicate(timeout=300)[0] for p in procs]
    assert [p.returncode for p in procs] == [0, 0], "\n".join(x[-3000:] for x in logs)
    assert "resumed from step" in logs[0], logs[0][-3000:]
    spec, arrays = cohort()
    options = OPTIONS._replace(steps=steps, checkpoint_every=5)
    params, losses = fit_population(
        jax.random.key(3), spec, arrays, options, tmp_path / "one", devices=jax.devices()[:1]
    )
    two = np.load(tmp_path / "0.npz")
    np.testing.assert_allclose(two["losses"], losses, rtol=1e-5, atol=1e-5)
    for p, value in jax.tree_util.tree_leaves_with_path(params):
        np.testing.assert_allclose(two[jax.tree_util.keystr(p)], value, rtol=1e-5, atol=1e-5)
