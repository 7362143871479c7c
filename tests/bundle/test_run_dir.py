"""A run directory knows what it holds: a rerun resumes only the run that wrote it."""

import dataclasses
import logging

import jax
import numpy as np
import pytest

from twinjax import pipeline
from twinjax.data import synthetic_cohort
from twinjax.runtime import RunDirectoryError


def _with(cfg, section, **changes):
    return dataclasses.replace(
        cfg, **{section: dataclasses.replace(getattr(cfg, section), **changes)}
    )


@pytest.fixture(scope="module")
def done(tmp_path_factory, tiny_cfg):
    out = tmp_path_factory.mktemp("run")
    cohort = synthetic_cohort(jax.random.key(0), n_individuals=3, n_steps=40)
    cfg = tiny_cfg()
    fit = pipeline.fit_twins(jax.random.key(1), cohort, cfg, out)
    return out, cohort, cfg, fit


@pytest.mark.integration
@pytest.mark.parametrize(
    "change, named",
    [
        (lambda c: _with(c, "train", steps=2), "train.steps: 4 -> 2"),
        (lambda c: dataclasses.replace(c, seed=5), "seed: 0 -> 5"),
        (lambda c: _with(c, "model", hidden=7), "model.hidden: 6 -> 7"),
    ],
)
def test_a_changed_setting_is_refused_naming_it(done, change, named):
    out, cohort, cfg, _ = done
    with pytest.raises(RunDirectoryError, match=named) as err:
        pipeline.fit_twins(jax.random.key(1), cohort, change(cfg), out)
    assert "train.resume=false" in str(err.value) and "new directory" in str(err.value)


@pytest.mark.integration
def test_changed_data_is_refused_and_resume_false_starts_over(done):
    out, cohort, cfg, _ = done
    other = synthetic_cohort(jax.random.key(9), n_individuals=3, n_steps=40)  # same shapes
    with pytest.raises(RunDirectoryError, match="cohort_sha256"):
        pipeline.fit_twins(jax.random.key(1), other, cfg, out)
    fresh = pipeline.fit_twins(jax.random.key(1), other, _with(cfg, "train", resume=False), out)
    assert len(fresh.population_losses) == cfg.train.steps  # trained from step 0, not resumed


@pytest.mark.integration  # two full runs (about 30 s on 2 cores)
def test_unchanged_rerun_resumes_without_training(tmp_path, tiny_cfg, caplog):
    cohort = synthetic_cohort(jax.random.key(0), n_individuals=3, n_steps=40)
    cfg = tiny_cfg()
    first = pipeline.fit_twins(jax.random.key(1), cohort, cfg, tmp_path)
    with caplog.at_level(logging.INFO, logger="twinjax.runtime.loop"):
        again = pipeline.fit_twins(jax.random.key(1), cohort, cfg, tmp_path)
    # every step was restored, none run again; the loss curve comes from the saved history
    assert f"population: resumed from step {cfg.train.steps}" in caplog.text
    np.testing.assert_array_equal(again.population_losses, first.population_losses)
    jax.tree.map(
        lambda a, b: (a == b).all() or pytest.fail("differs"), first.personal, again.personal
    )
