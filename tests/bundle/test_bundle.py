"""Saved twins: the bundle round trip, forecasting, personalizing and updating without a refit."""

from types import SimpleNamespace

import jax
import numpy as np
import pytest

import twinjax
from twinjax import bundle as tb
from twinjax import pipeline
from twinjax.data import CohortError, synthetic_cohort


@pytest.fixture(scope="module")
def run(tmp_path_factory, tiny_cfg):
    out = tmp_path_factory.mktemp("run")
    cohort = synthetic_cohort(jax.random.key(0), n_individuals=4, n_steps=50)
    cfg = tiny_cfg()
    fit = pipeline.fit_twins(jax.random.key(1), cohort, cfg, out)
    bundle = pipeline.save_model(fit, cohort, cfg, out / "model")
    return out, cohort, cfg, fit, bundle


@pytest.mark.integration
def test_loaded_bundle_forecasts_exactly_like_the_run(run):
    out, cohort, cfg, fit, bundle = run
    loaded = twinjax.load(out)
    assert loaded.subject_ids == bundle.subject_ids and loaded.spec == bundle.spec
    history = cfg.data.context + cfg.data.horizon - 1
    ref = fit.forecasts(cohort, fit.arrays.test, personal=True, history=history)
    got = tb.one_step(loaded, cohort, fit.arrays.test)
    np.testing.assert_allclose(got.mean, ref.mean, rtol=1e-6, atol=1e-6)
    np.testing.assert_allclose(got.scale, ref.scale, rtol=1e-6, atol=1e-6)
    key = jax.random.key(7)
    a = tb.forecast(bundle, cohort, horizon=5, key=key, n_samples=16)
    b = tb.forecast(loaded, cohort, horizon=5, key=key, n_samples=16)
    assert len(a) == cohort.n_individuals * 5 * cohort.n_features
    np.testing.assert_allclose(a[["mean", "q05", "q95"]], b[["mean", "q05", "q95"]], rtol=1e-6)
    assert (a.q05 <= a.q50).all() and (a.q50 <= a.q95).all()


def test_a_missing_variable_is_unobserved_and_an_unknown_covariate_is_refused(run):
    _, cohort, _, _, bundle = run
    drop = cohort.__class__(
        **{**cohort.__dict__, "values": cohort.values[..., 1:], "mask": cohort.mask[..., 1:],
           "variables": cohort.variables[1:], "truth": None},
    )  # fmt: skip
    table = tb.forecast(bundle, drop, horizon=2, key=jax.random.key(0), n_samples=4)
    assert set(table.variable) == set(bundle.variables) and np.isfinite(table["mean"]).all()
    renamed = cohort.__class__(**{**cohort.__dict__, "static_names": ("a", "b", "c")})
    with pytest.raises(CohortError, match="static covariates"):
        tb.forecast(bundle, renamed, horizon=2, key=jax.random.key(0), n_samples=4)


@pytest.mark.integration
def test_personalize_appends_and_update_changes_only_that_twin(run):
    _, _, _, _, bundle = run
    new = synthetic_cohort(jax.random.key(11), n_individuals=2, n_steps=40)
    new = new.__class__(**{**new.__dict__, "subject_ids": ("new-a", "new-b")})
    grown = tb.personalize(bundle, new, key=jax.random.key(2), steps=3)
    assert grown.subject_ids[-2:] == ("new-a", "new-b")
    old = jax.tree.map(lambda x: np.asarray(x)[: bundle.n_subjects], grown.personal)
    jax.tree.map(np.testing.assert_array_equal, old, bundle.personal)
    with pytest.raises(ValueError, match="already have twins"):
        tb.personalize(grown, new, key=jax.random.key(2))
    one = new.take(np.array([0]))
    updated = tb.update(grown, one, key=jax.random.key(3), steps=2)
    diff = jax.tree.leaves(
        jax.tree.map(
            lambda a, b: np.abs(np.asarray(a) - np.asarray(b)).max(-1),
            updated.personal,
            grown.personal,
        )  # fmt: skip
    )
    changed = np.stack([d.reshape(d.shape[0], -1).max(-1) for d in diff]).max(0)
    assert changed[-2] > 0 and np.all(changed[:-2] == 0) and changed[-1] == 0


def test_forecast_refuses_twins_of_another_model_naming_the_difference(run):
    from twinjax.config import ModelConfig
    from twinjax_experiments.forecast import TwinMismatch, check_model

    out, _, _, _, bundle = run
    same = SimpleNamespace(twin=str(out), model=ModelConfig(**bundle.config["model"]))
    check_model(bundle, same)  # the saved settings pass
    other = SimpleNamespace(
        twin=str(out), model=ModelConfig(**{**bundle.config["model"], "hidden": 9})
    )
    with pytest.raises(TwinMismatch, match="hidden: saved 6 -> 9"):
        check_model(bundle, other)
