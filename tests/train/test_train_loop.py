"""Training: NaN guard, resume determinism, chunked personalization equals all-at-once."""

from pathlib import Path
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from twinjax.config import DataConfig, ModelConfig, TrainConfig
from twinjax.data import synthetic_cohort
from twinjax.train import (
    TrainingDiverged,
    fit_personal,
    fit_population,
    prepare,
    run_loop,
    twin_spec,
)


class _State(NamedTuple):
    params: jax.Array
    step: jax.Array


def test_nan_loss_stops_with_step_and_writes_no_bad_checkpoint(tmp_path):
    def step_fn(s):
        loss = jnp.where(s.step == 6, jnp.nan, 1.0)  # the 7th step diverges
        return _State(s.params + loss, s.step + 1), loss

    state = _State(jnp.zeros(3), jnp.zeros((), jnp.int32))
    with pytest.raises(TrainingDiverged, match="step 7"):
        run_loop(
            state, step_fn, 20, checkpoint_dir=tmp_path, every=5, check_every=10, progress=False
        )
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.isdigit()) == ["5"]


def test_per_individual_nan_names_the_individual(tmp_path):
    def step_fn(s):
        loss = jnp.array([1.0, jnp.nan, 1.0])
        return _State(s.params, s.step + 1), loss

    state = _State(jnp.zeros(3), jnp.zeros((), jnp.int32))
    with pytest.raises(TrainingDiverged, match="step 1 for individual 1"):
        run_loop(state, step_fn, 4, checkpoint_dir=tmp_path, every=2, check_every=1, progress=False)


@pytest.fixture(scope="module")
def tiny():
    cohort = synthetic_cohort(jax.random.key(0), n_individuals=5, n_steps=60)
    data = DataConfig(context=8, horizon=4)
    train = TrainConfig(
        steps=6, personal_steps=6, batch_windows=2, checkpoint_every=3, eval_every=2, progress=False
    )
    spec = twin_spec(cohort, ModelConfig(hidden=6, attention_dim=4))
    arrays, _ = prepare(cohort, data)
    return spec, arrays, data, train


def test_resume_continues_exactly(tmp_path, tiny):
    spec, arrays, data, train = tiny
    key = jax.random.key(1)
    full, _ = fit_population(key, spec, arrays, data, train, tmp_path / "full")
    # an interrupted run: 3 steps (one checkpoint), then a fresh call with the full budget
    short = TrainConfig(**{**train.__dict__, "steps": 3})
    fit_population(key, spec, arrays, data, short, tmp_path / "resumed")
    resumed, losses = fit_population(key, spec, arrays, data, train, tmp_path / "resumed")
    assert len(losses) == 3  # only the remaining steps ran
    jax.tree.map(np.testing.assert_array_equal, full, resumed)


def test_chunked_personalization_equals_all_at_once(tmp_path, tiny):
    spec, arrays, data, train = tiny
    pop, _ = fit_population(jax.random.key(2), spec, arrays, data, train, tmp_path / "pop")
    key = jax.random.key(3)
    whole, val_whole = fit_personal(key, spec, pop, arrays, data, train, tmp_path / "whole")
    chunked_cfg = TrainConfig(**{**train.__dict__, "chunk_size": 2})  # 3 chunks, last one padded
    chunked, val_chunked = fit_personal(
        key, spec, pop, arrays, data, chunked_cfg, tmp_path / "chunks"
    )
    assert len(list(Path(tmp_path / "chunks").iterdir())) == 3
    np.testing.assert_allclose(val_whole, val_chunked, rtol=1e-5, atol=1e-5)
    jax.tree.map(
        lambda a, b: np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-5), whole, chunked
    )
    moved = jax.tree.leaves(jax.tree.map(lambda p, q: jnp.abs(p - q).max(), whole, pop))
    assert max(float(m) for m in moved) > 0  # personalization did change some individual
