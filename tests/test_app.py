"""The Hydra app: every experiment and shipped config composes; --help; kill -9, Ctrl-C and
SIGTERM stop a run of the command, which then resumes (each experiment's tiny run:
tests/experiments/test_experiments.py; a --multirun sweep: tests/test_sweeps.py)."""

import dataclasses
import importlib
import json
import logging
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from conftest import compose, run_in_process
from hydra.errors import ConfigCompositionException
from omegaconf import OmegaConf

from twinjax.cli_help import field_notes, help_text
from twinjax.config import Config, DataConfig, ModelConfig, TrainConfig, experiments, hydra_schema
from twinjax.runtime.lock import RunLocked
from twinjax_experiments.config import EXPERIMENTS

ROOT = Path(__file__).resolve().parents[1]
CONFIGS = ROOT / "configs"
TINY = [
    "model.family=recurrent",  # also with data=files (whose default is the auto twin)
    "data.n_individuals=4",
    "data.n_steps=80",
    "data.context=8",
    "data.horizon=4",
    "model.hidden=8",
    "model.attention_dim=4",
    "train.batch_windows=2",
    "train.personal_steps=20",
    "train.eval_every=5",
    "train.progress=false",
    "experiment.n_plot_individuals=2",
]


def _run(args, cwd=ROOT, env=None, **kw):
    """``python -m twinjax ARGS`` started in a subprocess (its own CPU devices, one per core)."""
    env = {**os.environ, "XLA_FLAGS": "", "HYDRA_FULL_ERROR": "1", **(env or {})}
    return subprocess.Popen(
        [sys.executable, "-m", "twinjax", *args],
        cwd=cwd,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        **kw,
    )


VARIANTS = sorted(p.stem for p in (CONFIGS / "experiment").glob("*.yaml"))  # YAML overrides


@pytest.mark.parametrize("name", [schema.name for schema in EXPERIMENTS] + VARIANTS)
def test_every_experiment_composes_into_its_dataclass_with_a_driver(name):
    config = OmegaConf.to_object(compose(f"experiment={name}"))
    assert isinstance(config, Config)
    # its own dataclass, or the Hydra schema of it (a subclass typing its Literals as str)
    assert type(config.experiment) in [hydra_schema(e) for e in EXPERIMENTS]
    assert isinstance(config.experiment, tuple(EXPERIMENTS))
    assert callable(importlib.import_module(f"twinjax_experiments.{config.experiment.name}").run)


def test_default_experiment_and_defaults_come_from_the_dataclass():
    cfg = compose()
    assert OmegaConf.to_object(cfg.experiment) == EXPERIMENTS[0]()  # twins_synthetic
    cfg = compose("experiment=abm_finance", "experiment.n_seeds=3")
    assert (cfg.experiment.n_seeds, cfg.experiment.n_months) == (3, 60)


@pytest.mark.parametrize("override", ["experiment.n_seed=3", "experiment.n_seeds=many"])
def test_unknown_field_or_wrong_type_fails_at_composition(override):
    with pytest.raises(ConfigCompositionException, match="experiment.n_seed"):
        compose("experiment=abm_finance", override)


@pytest.mark.parametrize("group", ["data", "model", "train"])
def test_every_shipped_group_option_composes(group):
    for option in sorted(p.stem for p in (CONFIGS / group).glob("*.yaml")):
        extra = ["data.observations=x.csv"] if option == "files" else []
        assert compose(f"{group}={option}", *extra)[group] is not None


def _params(run_dir: Path):
    import twinjax

    bundle = twinjax.load(run_dir)
    return {"population": bundle.population, "personal": bundle.personal}


INTERRUPTED = [*TINY, "train.steps=60", "train.checkpoint_every=5"]


@pytest.fixture(scope="module")
def uninterrupted(tmp_path_factory):
    run_dir = tmp_path_factory.mktemp("ref")
    run_in_process(run_dir, *INTERRUPTED)
    return run_dir


def _wait_for_a_checkpoint(proc, run_dir: Path) -> None:
    ckpts = run_dir / "checkpoints" / "population"
    deadline = time.time() + 600
    while not (ckpts.exists() and any(p.name.isdigit() for p in ckpts.iterdir())):
        assert proc.poll() is None, proc.stdout.read()
        assert time.time() < deadline
        time.sleep(0.02)


@pytest.mark.integration
@pytest.mark.parametrize("signum", [signal.SIGKILL, signal.SIGINT, signal.SIGTERM])
def test_stop_mid_training_then_resume_matches_uninterrupted(tmp_path, uninterrupted, signum,
                                                               caplog):  # fmt: skip
    """kill -9, Ctrl-C and SIGTERM (SLURM's warning) during the population phase of the command,
    then the same run again: the same parameters, metrics, figures and report as a run never
    stopped. (The command's runs are subprocesses; the rerun and the run never stopped are the
    same config in this process.)"""
    run_dir = tmp_path / "stopped"
    # kill -9 can land in the middle of writing a compiled program into the persistent cache; a
    # truncated entry there crashed a later test process that read it (a segfault in JAX's
    # cache read): the killed run gets a cache of its own
    private = {"JAX_COMPILATION_CACHE_DIR": str(tmp_path / "jax-cache")}
    proc = _run([*INTERRUPTED, f"hydra.run.dir={run_dir}"],
                env=private if signum == signal.SIGKILL else None)  # fmt: skip
    _wait_for_a_checkpoint(proc, run_dir)
    if signum == signal.SIGINT:  # meanwhile, a second run in the same directory is refused
        with pytest.raises(RunLocked, match=rf"in use by another run \(pid {proc.pid} on "):
            run_in_process(run_dir, *INTERRUPTED)
    proc.send_signal(signum)
    out, _ = proc.communicate(timeout=120)
    if (run_dir / "metrics.json").exists():
        pytest.skip("the run finished before it could be stopped")  # not seen on 2 cores
    assert not (run_dir / "model").exists()
    if signum == signal.SIGKILL:
        assert proc.returncode == -signal.SIGKILL
    else:
        assert proc.returncode == 128 + signum, out
        name = signal.Signals(signum).name
        line = next(x for x in out.splitlines() if f"stopped by {name}" in x)
        # in a loop: "in population after step 7 of 60; checkpoint saved in ..."; between the
        # loops (the signal can land there on a loaded machine): the last checkpoint
        assert re.search(r"checkpoint saved in \S+/checkpoints/\S+/\d+: rerun the same command "
                         "to resume", line), out  # fmt: skip
        assert "Traceback" not in out, out
        assert "Unable to initialize backend" not in out, out  # JAX's TPU probe, at INFO

    caplog.set_level(logging.INFO, logger="twinjax")
    m_res = run_in_process(run_dir, *INTERRUPTED)
    assert "population: resumed from step" in caplog.text
    a, b = _params(uninterrupted), _params(run_dir)
    for key in ("population", "personal"):
        for x, y in zip(_leaves(a[key]), _leaves(b[key]), strict=True):
            np.testing.assert_array_equal(x, y)
    m_ref = json.loads((uninterrupted / "metrics.json").read_text())
    assert m_ref.pop("timings").keys() == m_res.pop("timings").keys()  # seconds differ run to run
    assert m_ref.pop("memory").keys() == m_res.pop("memory").keys()  # and peak memory
    assert m_ref.keys() == m_res.keys()
    for key in m_ref:
        assert m_ref[key] == m_res[key], key
    figures = sorted(p.name for p in uninterrupted.glob("*.png"))
    assert "population_loss.png" in figures
    assert figures == sorted(p.name for p in run_dir.glob("*.png"))
    for name in figures:  # the loss curve too: its history is saved with the checkpoints
        assert (uninterrupted / name).read_bytes() == (run_dir / name).read_bytes(), name
    assert _report(uninterrupted) == _report(run_dir)


def _report(run_dir: Path) -> str:
    """report.md without what differs between any two runs (its directory, seconds)."""
    text = (run_dir / "report.md").read_text().replace(str(run_dir), "RUN")
    return re.sub(r"\d+(\.\d+)? ?s\b", "Ns", text)


def _leaves(tree):
    import jax

    return [np.asarray(x) for x in jax.tree.leaves(tree)]


def _help(monkeypatch, capsys, *args: str) -> str:
    """What ``twinjax ARGS`` prints (the command's entry point, called here)."""
    from twinjax.__main__ import cli

    monkeypatch.setattr(sys, "argv", ["twinjax", *args])
    cli()
    return capsys.readouterr().out


def test_help_lists_every_experiment_and_an_experiments_options(monkeypatch, capsys):
    out = _help(monkeypatch, capsys, "--help")
    for cls in EXPERIMENTS:
        assert f"  {cls().name} " in out
    assert "data.KEY options:" in out and "  context=12" in out
    for group in (DataConfig, ModelConfig, TrainConfig):  # every option says what it does
        notes = field_notes(group)
        assert [f.name for f in dataclasses.fields(group) if f.name not in notes] == []
    for name, entry in experiments().items():  # and every experiment option but its name
        notes = field_notes(entry.options)
        fields = dataclasses.fields(entry.options)
        assert [f.name for f in fields if f.name not in notes and f.name != "name"] == [], name
        for nested in {
            type(v) for v in vars(entry.options()).values() if dataclasses.is_dataclass(v)
        }:
            notes = field_notes(nested)  # a nested dataclass's own options (e.g. Nuts's)
            assert [f.name for f in dataclasses.fields(nested) if f.name not in notes] == []
    context = out.splitlines().index("  context=12")
    assert "history" in out.splitlines()[context + 1]  # its note, on the next line
    one = _help(monkeypatch, capsys, "experiment=forecast", "--help")
    assert "experiment=forecast:" in one and "personalize_new=False" in one
    pbc = help_text(["experiment=pbc_twins", "--help"]).splitlines()  # nested: its own keys
    assert "  nuts.num_chains=2" in pbc and "chains" in pbc[pbc.index("  nuts.num_chains=2") + 1]
    for cls in EXPERIMENTS:  # each experiment's help, in plain text
        text = help_text([f"experiment={cls().name}", "--help"])
        assert f"experiment={cls().name}:" in text
        assert "``" not in text and ":func:" not in text, cls().name
