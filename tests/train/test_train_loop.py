"""Training: NaN guard, resume determinism, chunked personalization equals all-at-once."""

from pathlib import Path
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from twinjax.data import prepare, synthetic_cohort
from twinjax.runtime import TrainingDiverged, run_loop
from twinjax.train import PersonalizeOptions, PopulationOptions, fit_personal, fit_population
from twinjax.twins import TwinSpec


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
    common = dict(steps=6, window=12, batch_windows=2, checkpoint_every=3, progress=False)
    pop = PopulationOptions(**common)
    personal = PersonalizeOptions(**common, eval_every=2)
    spec = TwinSpec.for_cohort(cohort, hidden=6, attention_dim=4)
    arrays, _ = prepare(cohort)
    return spec, arrays, pop, personal


@pytest.mark.integration
def test_resume_continues_exactly(tmp_path, tiny):
    spec, arrays, train, _ = tiny
    key = jax.random.key(1)
    full, full_losses = fit_population(key, spec, arrays, train, tmp_path / "full")
    # an interrupted run: 3 steps (one checkpoint), then a fresh call with the full budget
    fit_population(key, spec, arrays, train._replace(steps=3), tmp_path / "resumed")
    resumed, losses = fit_population(key, spec, arrays, train, tmp_path / "resumed")
    jax.tree.map(np.testing.assert_array_equal, full, resumed)
    # the whole curve: the 3 steps before the checkpoint come from the history saved with it
    np.testing.assert_array_equal(losses, full_losses)
    assert len(losses) == train.steps


@pytest.mark.integration
def test_chunked_personalization_equals_all_at_once(tmp_path, tiny):
    spec, arrays, train, personal = tiny
    pop, _ = fit_population(jax.random.key(2), spec, arrays, train, tmp_path / "pop")
    key = jax.random.key(3)
    whole, val_whole = fit_personal(key, spec, pop, arrays, personal, tmp_path / "whole")
    chunked_opts = personal._replace(chunk_size=2)  # 3 chunks, last one padded
    chunked, val_chunked = fit_personal(key, spec, pop, arrays, chunked_opts, tmp_path / "chunks")
    assert len(list(Path(tmp_path / "chunks").iterdir())) == 3
    np.testing.assert_allclose(val_whole, val_chunked, rtol=1e-5, atol=1e-5)
    jax.tree.map(
        lambda a, b: np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-5), whole, chunked
    )
    moved = jax.tree.leaves(jax.tree.map(lambda p, q: jnp.abs(p - q).max(), whole, pop))
    assert max(float(m) for m in moved) > 0  # personalization did change some individual


@pytest.mark.integration
@pytest.mark.parametrize("adapt", ["mean", "heads"])
def test_partial_personalization_keeps_the_rest_the_populations(tmp_path, tiny, adapt):
    """adapt='mean': only the mean head moves from the population twin (the scale head, the cell
    and the attention stay exactly the population's); 'heads': both heads move, the rest stays."""
    spec, arrays, train, personal = tiny
    pop, _ = fit_population(jax.random.key(2), spec, arrays, train, tmp_path / "pop")
    opts = personal._replace(adapt=adapt)
    params, _ = fit_personal(jax.random.key(3), spec, pop, arrays, opts, tmp_path / adapt)
    moved = {"mean": {"mean"}, "heads": {"mean", "scale"}}[adapt]
    for name in params._fields:
        if getattr(params, name) is None:
            continue
        same = jax.tree.map(lambda p, q: bool(np.all(np.asarray(p) == np.asarray(q)[None])),
                            getattr(params, name), getattr(pop, name))  # fmt: skip
        assert all(jax.tree.leaves(same)) == (name not in moved), (adapt, name)
    with pytest.raises(ValueError, match="adapt="):
        fit_personal(jax.random.key(3), spec, pop, arrays, opts._replace(adapt="cell"),
                     tmp_path / "bad")  # fmt: skip
