"""Test set-up (must run before JAX starts): 8 virtual CPU devices for sharding tests, and a
persistent compilation cache shared by the test processes and the app runs they start, so a
program compiled once (e.g. the twin's training step) is not compiled again by every subprocess."""

import gc
import json
import os
import sys
import tempfile
from pathlib import Path

import pytest

os.environ.setdefault("XLA_FLAGS", "--xla_force_host_platform_device_count=8")
os.environ.setdefault("JAX_PLATFORMS", "cpu")
os.environ.setdefault("MPLBACKEND", "Agg")
# one cache folder per xdist worker under TWINJAX_TEST_JAX_CACHE: JAX writes an entry in place,
# unlocked, so a worker could read a program the other worker is writing (CI: a segfault in a
# worker, then a hang). Set, not defaulted: workers inherit the controller's environment. The app
# runs a test starts wait for it, so they share its folder
os.environ["JAX_COMPILATION_CACHE_DIR"] = os.path.join(
    os.environ.get(
        "TWINJAX_TEST_JAX_CACHE", os.path.join(tempfile.gettempdir(), "twinjax-test-jax-cache")
    ),
    os.environ.get("PYTEST_XDIST_WORKER", "main"),
)
# programs that took at least 0.2 s to compile. Caching every program (threshold 0) made tiny
# runs faster warm, but JAX writes an entry in place, unlocked, and with thousands of small
# entries a test process read one being written (a segfault in
# compilation_cache.get_executable_and_time); its lock (a cache size limit) rescans the whole
# directory on every write and made the suite slower than the cache saved
os.environ.setdefault("JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS", "0.2")


ROOT = Path(__file__).resolve().parents[1]

# Every program a test process compiles stays loaded until the process ends, and on Linux each
# CPU program holds memory mappings (a tiny twins run adds about 4,000): a worker that ran a
# few hundred tests reached 61,000 of the kernel's 65,530 (vm.max_map_count), and the next
# compile aborted or segfaulted the worker (CI: a segfault at 95% of the suite, then a hang).
# Past this many mappings, the programs are dropped after a test (jax.clear_caches); the
# persistent cache above gives the slow ones back without compiling.
MAX_MAPPINGS = 30_000
MAPS = Path("/proc/self/maps")


@pytest.fixture(autouse=True)
def _release_compiled_programs():
    yield
    if "jax" in sys.modules and MAPS.exists():
        with MAPS.open() as f:
            mappings = sum(1 for _ in f)
        if mappings > MAX_MAPPINGS:
            sys.modules["jax"].clear_caches()
            gc.collect()


def compose(*overrides: str):
    """The app's config for ``python -m twinjax OVERRIDES``, composed by Hydra's compose API
    from the shipped configs and the registered schemas (without the ``hydra`` node)."""
    from hydra import compose as hydra_compose
    from hydra import initialize_config_dir

    from twinjax.config import CONFIG_DIR, register_configs

    register_configs()
    with initialize_config_dir(config_dir=CONFIG_DIR, version_base="1.3"):
        return hydra_compose(config_name="config", overrides=list(overrides))


def run_in_process(run_dir: Path, *overrides: str) -> dict:
    """What ``python -m twinjax hydra.run.dir=RUN_DIR OVERRIDES`` runs, in this process: the
    app's ``run_experiment`` on the composed config; returns metrics.json as written. An error
    is raised as the app would report it (the command line's one-line report and exit status are
    tested in tests/test_app.py and tests/data/test_data_app.py).

    Unlike the command, the run sees this test process's 8 CPU devices (XLA_FLAGS above; the
    command makes one per core); the personal fits use one per core either way
    (``twinjax.train.devices.training_devices``)."""
    from twinjax.__main__ import run_experiment

    run_dir = Path(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    run_experiment(compose(*overrides), run_dir)
    return json.loads((run_dir / "metrics.json").read_text())


@pytest.fixture
def run_cli(monkeypatch, capsys):
    """``run_cli(*args, full_error=False) -> (exit_status, output)``: the ``twinjax`` command's
    entry point (``twinjax.__main__.cli``: Hydra's own command-line parsing, ``--multirun``
    sweeps and launchers, the app's one-line error reports and exit status) called in this
    process, with what it printed and logged to stdout and stderr. ``full_error``:
    ``HYDRA_FULL_ERROR=1``, which lets the error itself raise.

    Hydra's job logging writes to this test's captured streams while the command runs; the
    logging set-up is put back afterwards, as are the working directory and ``sys.argv``.
    Hydra's set-up closes every existing handler, and absl's handler closes its stream on close
    unless it is the current stderr: here that stream can be pytest's capture of the session,
    whose closing ends the session, so absl's handler is closed as a plain handler is."""
    import logging

    from absl import logging as absl_logging

    from twinjax.__main__ import cli

    monkeypatch.setattr(absl_logging.PythonHandler, "close", logging.Handler.close)

    def run(*args: str, full_error: bool = False) -> tuple[int, str]:
        monkeypatch.setattr(sys, "argv", ["twinjax", *args])
        monkeypatch.chdir(ROOT)
        if full_error:
            monkeypatch.setenv("HYDRA_FULL_ERROR", "1")
        else:
            monkeypatch.delenv("HYDRA_FULL_ERROR", raising=False)
        root = logging.getLogger()
        handlers, level = list(root.handlers), root.level
        status = 0
        try:
            cli()
        except SystemExit as e:
            status = 0 if e.code is None else e.code
        finally:
            root.handlers[:] = handlers
            root.setLevel(level)
            monkeypatch.delenv("HYDRA_FULL_ERROR", raising=False)
        out = capsys.readouterr()
        return status, out.out + out.err

    return run


@pytest.fixture(scope="session")
def run_app():
    """``run_app(run_dir, *overrides) -> metrics``: :func:`run_in_process`, one JAX start and one
    compilation of each program for every run in a test process."""
    return run_in_process


# A tiny app config for pipeline-level tests: the library's own option dataclasses with their
# defaults, only the shapes and steps made small.
def _tiny_cfg(**train):
    from twinjax.config import Config, DataConfig, ModelConfig, TrainConfig

    data = DataConfig(context=6, horizon=3)
    model = ModelConfig(cell="lstm", hidden=6, attention_dim=4)
    small = dict(steps=4, personal_steps=4, batch_windows=2, eval_every=2, checkpoint_every=4,
                 keep_checkpoints=1, progress=False)  # fmt: skip
    return Config(seed=0, data=data, model=model, train=TrainConfig(**small | train))


@pytest.fixture(scope="session")
def tiny_cfg():
    """``tiny_cfg(**train_overrides)``: the config factory."""
    return _tiny_cfg


# doctests that run whole fits (a population fit, a NUTS run): marked like the tests that do
INTEGRATION_DOCTESTS = {"twinjax.train", "twinjax.bayes.inference.run_nuts"}


@pytest.hookimpl(tryfirst=True)  # before -m deselects
def pytest_collection_modifyitems(items):
    for item in items:
        if isinstance(item, pytest.DoctestItem) and item.name in INTEGRATION_DOCTESTS:
            item.add_marker(pytest.mark.integration)
