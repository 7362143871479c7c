"""Test set-up (must run before JAX starts): 8 virtual CPU devices for sharding tests, and a
persistent compilation cache shared by the test processes and the app runs they start, so a
program compiled once (e.g. the twin's training step) is not compiled again by every subprocess."""

import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

os.environ.setdefault("XLA_FLAGS", "--xla_force_host_platform_device_count=8")
os.environ.setdefault("JAX_PLATFORMS", "cpu")
os.environ.setdefault("MPLBACKEND", "Agg")
os.environ.setdefault(
    "JAX_COMPILATION_CACHE_DIR", os.path.join(tempfile.gettempdir(), "twinjax-test-jax-cache")
)
os.environ.setdefault("JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS", "0.2")


ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture
def run_app():
    """``run_app(run_dir, *overrides) -> metrics``: ``python -m twinjax`` in a subprocess (one
    CPU device, Agg plots) writing into ``run_dir``; fails the test with the app's stderr."""

    def _run(run_dir: Path, *overrides: str) -> dict:
        env = {**os.environ, "XLA_FLAGS": "", "MPLBACKEND": "Agg"}
        cmd = [sys.executable, "-m", "twinjax", f"hydra.run.dir={run_dir}", *overrides]
        proc = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)
        assert proc.returncode == 0, proc.stderr[-3000:]
        return json.loads((Path(run_dir) / "metrics.json").read_text())

    return _run


# A tiny app config for pipeline-level tests: the app's own dataclasses (every field and default
# from twinjax.config), with small shapes and steps.
def _tiny_cfg(**train):
    from twinjax.config import Config, DataConfig, ModelConfig, TrainConfig

    data = DataConfig(
        normalization="population", val_fraction=0.15, test_fraction=0.15, context=6, horizon=3
    )
    model = ModelConfig(cell="lstm", hidden=6, attention=True, attention_dim=4, min_scale=1e-3)
    defaults = dict(
        steps=4, personal_steps=4, lr=3e-3, personal_lr=3e-3, batch_windows=2,
        prior_strength=30.0, population_batch=0, chunk_size=0, eval_every=2, selection="none",
        checkpoint_every=4, keep_checkpoints=1, calibration_strength=20.0, progress=False,
        resume=True,
    )  # fmt: skip
    return Config(seed=0, data=data, model=model, train=TrainConfig(**defaults | train))


@pytest.fixture(scope="session")
def tiny_cfg():
    """``tiny_cfg(**train_overrides)``: the config factory."""
    return _tiny_cfg
