"""The population twin trained by two processes (JAX's multi-process runtime on localhost, gloo
CPU collectives, 2 devices each: one mesh of 4 devices spanning both) equals the twin one
process trains on the whole cohort: the same losses and parameters to 1e-5 (float rounding of
sums taken over 4 devices in another order, over 4 Adam steps; the sharded-vs-one-device tests
use the same tolerance)."""

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import jax
import numpy as np
import pandas as pd
import pytest

import twinjax
from twinjax.train import fit_population

sys.path.insert(0, str(Path(__file__).parent))
from two_processes import OPTIONS, cohort  # noqa: E402

pytestmark = pytest.mark.integration  # two or three JAX processes start and compile (20-60 s)
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


def _kill_the_second(procs, checkpoints: Path) -> str:
    """SIGKILLs the second process once ``checkpoints`` holds step 10 or later; returns what the
    first printed until it ended."""
    deadline = time.monotonic() + 240
    while not any(p.name.isdigit() and int(p.name) >= 10 for p in checkpoints.glob("*")):
        assert time.monotonic() < deadline and procs[0].poll() is None, procs[0].communicate()
        time.sleep(0.05)
    procs[1].send_signal(signal.SIGKILL)
    out = procs[0].communicate(timeout=120)[0]
    procs[1].communicate()
    return out


def test_a_killed_process_ends_the_other_with_a_message_and_both_resume(tmp_path):
    """Process 1 is killed (SIGKILL) once a checkpoint exists: process 0 does not hang; JAX's
    distributed service ends it after the heartbeat timeout (10 s here) saying that another task
    died, after the fit's own line on what to do (rerun every process). Both rerun, resume from
    the last checkpoint and end with the twin of an uninterrupted one-process fit (1e-5)."""
    steps, port = 40, _free_port()
    procs = [_start(i, port, tmp_path, steps) for i in (0, 1)]
    out = _kill_the_second(procs, tmp_path / "checkpoints")
    # JAX's heartbeat ends it, or first a collective in flight fails on the lost peer
    said = "another task died" in out or "closed by peer" in out
    assert procs[0].returncode != 0 and said, out[-3000:]
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


# the main job (python -m twinjax) on a user's files, small enough for CI
APP = ["data=files", "model.family=recurrent", "data.normalization=individual",
       "data.context=8", "data.horizon=4", "model.hidden=4", "model.attention_dim=4",
       "train.steps=6", "train.batch_windows=2", "train.personal_steps=5", "train.eval_every=5",
       "train.progress=false", "train.checkpoint_every=3", "experiment.n_plot_individuals=2",
       "seed=1"]  # fmt: skip


def _app(out: Path, files: list[str], *args: str, devices: int) -> subprocess.Popen:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path), "JAX_PLATFORMS": "cpu",
           "XLA_FLAGS": f"--xla_force_host_platform_device_count={devices}"}  # fmt: skip
    return subprocess.Popen(
        [sys.executable, "-m", "twinjax", *APP, *files, *args, f"hydra.run.dir={out}"],
        env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )  # fmt: skip


def _numbers(tree, path=""):
    """Every leaf of a metrics.json tree by its path (timings and memory left out: they are
    this run's, not its results)."""
    if isinstance(tree, dict):
        return {k: v for key, value in tree.items() if key not in ("timings", "memory")
                for k, v in _numbers(value, f"{path}.{key}").items()}  # fmt: skip
    if isinstance(tree, list):
        return {k: v for i, x in enumerate(tree) for k, v in _numbers(x, f"{path}[{i}]").items()}
    return {path: tree}


def test_the_main_job_on_two_processes_equals_one_process(tmp_path):
    """``python -m twinjax`` with ``distributed.enabled=true`` in two processes on localhost
    (2 CPU devices each; each reads its share of the subjects from the files) against one
    process reading them all: the same metrics.json (every number to 1e-5, the data summary
    included), per_individual.csv, and saved twins (population, personal, calibration, scalers;
    1e-5: float rounding of sums taken per process, then across processes, and over 4 devices
    instead of 1). Process 0 alone writes the run's files."""
    from twinjax.data import synthetic_cohort, to_long

    tables = to_long(synthetic_cohort(jax.random.key(3), n_individuals=12, n_steps=60))
    files = []
    for name, table in zip(("observations", "interventions", "static"), tables, strict=True):
        table.to_csv(tmp_path / f"{name}.csv", index=False)
        files.append(f"data.{name}={tmp_path / f'{name}.csv'}")
    port = _free_port()
    procs = [_app(tmp_path / "two", files, "distributed.enabled=true",
                  f"distributed.coordinator_address=localhost:{port}",
                  "distributed.num_processes=2", f"distributed.process_id={i}",
                  "distributed.heartbeat_timeout_seconds=20", devices=2) for i in (0, 1)]
    procs.append(_app(tmp_path / "one", files, devices=1))  # fmt: skip
    logs = [p.communicate(timeout=400)[0] for p in procs]
    assert [p.returncode for p in procs] == [0, 0, 0], "\n".join(x[-3000:] for x in logs)
    assert "process 1 of 2 holds" in logs[1] and "process 0 of 2 holds" in logs[0]
    one, two = (json.loads((tmp_path / d / "metrics.json").read_text()) for d in ("one", "two"))
    assert two.pop("processes") == 2 and two["data_summary"].pop("processes") == 2
    one, two = _numbers(one), _numbers(two)
    assert set(one) == set(two)
    for key, value in one.items():
        if isinstance(value, float):
            np.testing.assert_allclose(two[key], value, rtol=1e-5, atol=1e-6, err_msg=key)
        else:
            assert two[key] == value, key
    tables = [pd.read_csv(tmp_path / d / "per_individual.csv") for d in ("one", "two")]
    assert list(tables[0].subject_id) == list(tables[1].subject_id)
    num = tables[0].select_dtypes("number").columns
    np.testing.assert_allclose(tables[1][num], tables[0][num], rtol=1e-5, atol=1e-6)
    a, b = (twinjax.load(tmp_path / d) for d in ("one", "two"))
    assert a.subject_ids == b.subject_ids
    for part in ("population", "personal", "calibration", "scalers", "t0"):
        for x, y in zip(jax.tree.leaves(getattr(a, part)), jax.tree.leaves(getattr(b, part)),
                        strict=True):  # fmt: skip
            np.testing.assert_allclose(np.asarray(y), np.asarray(x), rtol=1e-5, atol=1e-6,
                                       err_msg=part)  # fmt: skip
    assert (tmp_path / "two" / "report.md").exists()
    assert not (tmp_path / "two" / "process1" / "metrics.json").exists()
    assert (tmp_path / "two" / "checkpoints" / "personal" / "process1").is_dir()


def test_the_main_job_killed_in_one_process_resumes_on_a_rerun(tmp_path):
    """The main job on two processes: process 1 killed (SIGKILL) once the population twin has
    a checkpoint; process 0 ends instead of waiting, saying why: JAX's "another task died" (10 s
    heartbeat), or, when a collective in flight loses its peer first, the app's line that
    another process ended first. Both rerun with the same settings: the population fit resumes from the
    checkpoint, and the run ends with the metrics of an uninterrupted one-process run (1e-5)."""
    from twinjax.data import synthetic_cohort, to_long

    obs = to_long(synthetic_cohort(jax.random.key(3), n_individuals=12, n_steps=60))[0]
    obs.to_csv(tmp_path / "obs.csv", index=False)
    files = [f"data.observations={tmp_path / 'obs.csv'}", "train.steps=40",
             "train.checkpoint_every=5"]  # fmt: skip

    def two(port):
        return [_app(tmp_path / "two", files, "distributed.enabled=true",
                     f"distributed.coordinator_address=localhost:{port}",
                     "distributed.num_processes=2", f"distributed.process_id={i}",
                     "distributed.heartbeat_timeout_seconds=10", devices=2) for i in (0, 1)]  # fmt: skip

    procs = two(_free_port())
    out = _kill_the_second(procs, tmp_path / "two" / "checkpoints" / "population")
    # JAX's heartbeat ends it ("another task died"), or first a collective that lost its
    # peer raises and the app says so
    said = "another task died" in out or "another process ended first" in out
    assert procs[0].returncode != 0 and said, out[-3000:]
    assert not (tmp_path / "two" / "metrics.json").exists()
    procs = [*two(_free_port()), _app(tmp_path / "one", files, devices=1)]
    logs = [p.communicate(timeout=400)[0] for p in procs]
    assert [p.returncode for p in procs] == [0, 0, 0], "\n".join(x[-3000:] for x in logs)
    assert "population: resumed from step" in logs[0], logs[0][-3000:]
    one, two = (json.loads((tmp_path / d / "metrics.json").read_text()) for d in ("one", "two"))
    for key in ("objective", "validation_rmse_ratio", "rmse_ratio_personalized_over_population"):
        np.testing.assert_allclose(two[key], one[key], rtol=1e-5, err_msg=key)
    for name in ("population", "personalized"):
        for key, value in one[name].items():
            np.testing.assert_allclose(two[name][key], value, rtol=1e-5, atol=1e-6, err_msg=key)


def test_an_experiment_that_runs_on_one_process_refuses_several(tmp_path):
    """``distributed.enabled=true`` with an experiment that has no multi-process path (here the
    auto twin of a user's file): every process stops at once with a one-line error naming what
    works, instead of each doing the whole job."""
    from twinjax.data import synthetic_cohort, to_long

    to_long(synthetic_cohort(jax.random.key(3), n_individuals=4, n_steps=30))[0].to_csv(
        tmp_path / "obs.csv", index=False
    )
    port = _free_port()
    procs = [
        _app(tmp_path / "run", [f"data.observations={tmp_path / 'obs.csv'}"],
             "model.family=null", "distributed.enabled=true", "distributed.num_processes=2",
             f"distributed.coordinator_address=localhost:{port}", f"distributed.process_id={i}",
             devices=1)
        for i in (0, 1)
    ]  # fmt: skip
    logs = [p.communicate(timeout=120)[0] for p in procs]
    assert all(p.returncode == 1 for p in procs), "\n".join(x[-2000:] for x in logs)
    assert "the auto twin runs on one process" in logs[0], logs[0][-2000:]
    assert not (tmp_path / "run" / "metrics.json").exists()
