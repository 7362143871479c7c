"""Flax twins (twinjax.twins.flax_net): a flax module as the twin's network.

The reference: flax's own GRU cells (linen ``nn.GRUCell``, nnx ``nnx.GRUCell``), given the
weights of the built-in GRU twin, give its predictive Gaussians and its sampled rollouts.
"""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from twinjax import pipeline
from twinjax.config import ModelConfig
from twinjax.data import Series, prepare, synthetic_cohort
from twinjax.train import PersonalizeOptions, PopulationOptions, fit_personal, fit_population
from twinjax.twins import (
    FlaxParams,
    FlaxSpec,
    TwinSpec,
    apply,
    forecast,
    init_params,
    stream_init,
)
from twinjax.twins.flax_net import network

HIDDEN = 8
# float32: flax's cells and the built-in one sum the same products in another order (per-gate
# matmuls against one fused matmul), so values agree to rounding, not bit for bit
TOL = dict(atol=1e-5, rtol=1e-5)


@pytest.fixture(scope="module")
def cohort():
    return synthetic_cohort(jax.random.key(0), n_individuals=4, n_steps=40)


def _series(cohort, i=None):
    data = Series(
        jnp.asarray(cohort.values),
        jnp.asarray(cohort.mask),
        jnp.asarray(cohort.interventions),
        jnp.asarray(cohort.static),
    )
    return data if i is None else data.at(i)


def _builtin_gru(cohort):
    """The built-in GRU twin without attention, every weight and bias drawn at random."""
    spec = TwinSpec.for_cohort(cohort, cell="gru", hidden=HIDDEN, attention=False)
    params = init_params(jax.random.key(1), spec)
    leaves, tree = jax.tree.flatten(params)
    keys = jax.random.split(jax.random.key(2), len(leaves))
    noisy = [x + 0.3 * jax.random.normal(k, x.shape) for x, k in zip(leaves, keys, strict=True)]
    return spec, jax.tree.unflatten(tree, noisy)


def _flax_gru_weights(cell, kind: str) -> dict:
    """The built-in GRU's ``wx, wh, b`` (gates r, u, n) in a flax GRU cell's layout."""
    h, (wx, wh, b) = HIDDEN, (cell.wx, cell.wh, cell.b)
    if kind == "nnx":  # nnx.GRUCell: one input and one hidden dense, gates r, z, n
        return {"dense_i": {"kernel": wx, "bias": b}, "dense_h": {"kernel": wh}}
    gate = lambda w, g: w[:, g * h : (g + 1) * h]
    return {
        "ir": {"kernel": gate(wx, 0), "bias": b[:h]},
        "iz": {"kernel": gate(wx, 1), "bias": b[h : 2 * h]},
        "in": {"kernel": gate(wx, 2), "bias": b[2 * h :]},
        "hr": {"kernel": gate(wh, 0)},
        "hz": {"kernel": gate(wh, 1)},
        "hn": {"kernel": gate(wh, 2), "bias": jnp.zeros(h)},
    }


def _replace_cell(tree: dict, cell: dict) -> dict:
    """``tree`` with the sub-dict holding a GRU cell's weights replaced by ``cell``."""
    if set(cell) == set(tree):
        assert jax.tree.map(jnp.shape, tree) == jax.tree.map(jnp.shape, cell)
        return cell
    return {k: _replace_cell(v, cell) if isinstance(v, dict) else v for k, v in tree.items()}


@pytest.mark.parametrize("kind", ["linen", "nnx"])
def test_flax_gru_with_the_builtin_weights_is_the_builtin_twin(cohort, kind):
    spec, params = _builtin_gru(cohort)
    module = "flax_nets:LinenGRU" if kind == "linen" else "flax_nets:NnxGRU"
    fspec = FlaxSpec.for_cohort(cohort, module, kwargs={"features": HIDDEN})
    assert network(fspec).kind == kind
    fresh = init_params(jax.random.key(3), fspec)
    fparams = FlaxParams(
        mean=params.mean,
        network=_replace_cell(fresh.network, _flax_gru_weights(params.cell, kind)),
        scale=params.scale,
    )
    series = _series(cohort, 1)
    for got, want in zip(apply(fparams, fspec, series), apply(params, spec, series), strict=True):
        np.testing.assert_allclose(got, want, **TOL)
    # the rollout: each sampled step fed back (same key, so the same draws)
    history = Series(*(x[:30] for x in series[:3]), series.static)
    plan = jax.random.normal(jax.random.key(4), (6, spec.n_interventions))
    key = jax.random.key(5)
    for got, want in zip(
        forecast(fparams, fspec, history, plan, key=key),
        forecast(params, spec, history, plan, key=key),
        strict=True,
    ):
        np.testing.assert_allclose(got, want, **TOL)


def test_vmapped_flax_cohort_equals_per_individual_calls(cohort):
    spec = FlaxSpec.for_cohort(cohort, "flax_nets:NnxMLP", kwargs={"width": 6})
    keys = jax.random.split(jax.random.key(1), cohort.n_individuals)
    params = jax.vmap(init_params, in_axes=(0, None))(keys, spec)
    data = _series(cohort)
    plan = jnp.zeros((cohort.n_individuals, 4, spec.n_interventions))
    cohort_apply = jax.jit(jax.vmap(apply, in_axes=(0, None, 0)), static_argnums=1)
    cohort_forecast = jax.jit(jax.vmap(forecast, in_axes=(0, None, 0, 0)), static_argnums=1)
    mean, scale = cohort_apply(params, spec, data)
    f_mean, f_scale = cohort_forecast(params, spec, data, plan)
    one, one_ahead = jax.jit(apply, static_argnums=1), jax.jit(forecast, static_argnums=1)
    for i in range(cohort.n_individuals):
        p_i = jax.tree.map(lambda x, i=i: x[i], params)
        m_i, s_i = one(p_i, spec, data.at(i))
        np.testing.assert_allclose(mean[i], m_i, **TOL)
        np.testing.assert_allclose(scale[i], s_i, **TOL)
        fm_i, fs_i = one_ahead(p_i, spec, data.at(i), plan[i])
        np.testing.assert_allclose(f_mean[i], fm_i, **TOL)
        np.testing.assert_allclose(f_scale[i], fs_i, **TOL)
    assert not np.allclose(mean[0], mean[1])  # individuals' twins differ


@pytest.mark.integration
def test_flax_twin_trains_and_personalizes(cohort, tmp_path):
    arrays, _ = prepare(cohort)
    spec = FlaxSpec.for_cohort(cohort, "flax_nets:NnxMLP", kwargs={"width": 8})
    tiny = dict(window=10, batch_windows=4, progress=False, checkpoint_every=1000)
    pop, losses = fit_population(
        jax.random.key(1), spec, arrays, PopulationOptions(steps=60, lr=1e-2, **tiny), tmp_path
    )
    assert np.mean(losses[-10:]) < np.mean(losses[:10]) - 0.1, losses
    options = PersonalizeOptions(steps=20, lr=1e-2, adapt="mean", **tiny)
    personal, val = fit_personal(jax.random.key(2), spec, pop, arrays, options, tmp_path / "p")
    assert val.shape == (cohort.n_individuals,) and np.isfinite(val).all()
    # the mean heads became each individual's own; the network and the scale head stayed shared
    w = np.asarray(personal.mean.w)
    assert not np.allclose(w[0], np.asarray(pop.mean.w), atol=1e-4)
    assert not np.allclose(w[0], w[1], atol=1e-4)
    for shared, per in zip(
        jax.tree.leaves((pop.network, pop.scale)),
        jax.tree.leaves((personal.network, personal.scale)),
        strict=True,
    ):
        np.testing.assert_array_equal(per, np.broadcast_to(shared, per.shape))


@pytest.mark.parametrize(
    ("module", "message"),
    [
        ("flax_nets", "write it as 'package.module:ClassName'"),
        ("flax_nets:Missing", "'flax_nets' has no 'Missing'"),
        ("no_such_package.nets:GRU", "module 'no_such_package.nets' does not import"),
        ("flax_nets:NOT_A_MODULE", "not a flax module class"),
        ("flax_nets:Pooled", r"to \(4,\); a twin's network returns features \[time, width\]"),
        ("flax_nets:Backwards", "is not causal"),
        ("flax_nets:WithBatchNorm", r"state other than parameters \(\['batch_stats'\]\)"),
        ("flax_nets:WithDropout", "draws random numbers in its forward pass"),
    ],
)
def test_a_bad_module_fails_naming_it(cohort, module, message):
    spec = FlaxSpec.for_cohort(cohort, module)
    with pytest.raises((ImportError, TypeError, ValueError), match=message) as caught:
        network(spec)
    assert repr(module) in str(caught.value)
    # from the app's config: the same, naming the setting
    config = ModelConfig(network="flax", module=module)
    with pytest.raises(pipeline.ConfigError, match=f"model.module={module!r}"):
        pipeline.twin_spec(cohort, config)


def test_the_apps_network_setting(cohort):
    config = ModelConfig()
    config.network = "flx"  # (the app refuses it before; this is the library's own check)
    with pytest.raises(pipeline.ConfigError, match="model.network='flx'"):
        pipeline.twin_spec(cohort, config)
    with pytest.raises(pipeline.ConfigError, match="needs model.module"):
        pipeline.twin_spec(cohort, ModelConfig(network="flax"))
    config = ModelConfig(network="flax", module="flax.linen:Dense", module_kwargs={"features": 5})
    spec = pipeline.twin_spec(cohort, config)
    assert spec == FlaxSpec.for_cohort(cohort, "flax.linen:Dense", kwargs={"features": 5})
    assert network(spec).width == 5


def test_the_command_line_selects_a_flax_network(cohort):
    from conftest import compose

    for kwargs in ("model.module_kwargs={features:5}", "+model.module_kwargs.features=5"):
        cfg = compose("model.network=flax", "model.module=flax.linen:Dense", kwargs)
        spec = pipeline.twin_spec(cohort, cfg.model)
        assert spec.kwargs == (("features", 5),) and network(spec).width == 5


def test_module_kwargs_must_be_json(cohort):
    with pytest.raises(TypeError, match=r"kwargs\['init'\]"):
        FlaxSpec.for_cohort(cohort, "flax.linen:Dense", kwargs={"init": object()})


def test_a_streaming_twin_needs_the_builtin_cell(cohort):
    spec = FlaxSpec.for_cohort(cohort, "flax.linen:Dense", kwargs={"features": 4})
    params = init_params(jax.random.key(0), spec)
    with pytest.raises(ValueError, match="FlaxSpec twins have none"):
        stream_init(params, spec, _series(cohort, 0), cache=4)


@pytest.mark.integration
def test_a_saved_flax_twin_reloads_and_forecasts_the_same(tmp_path, tiny_cfg):
    import dataclasses

    import pandas as pd

    import twinjax
    from twinjax import bundle as tb

    cohort = synthetic_cohort(jax.random.key(0), n_individuals=4, n_steps=50)
    cfg = tiny_cfg(steps=8, personal_steps=8)
    model = ModelConfig(network="flax", module="flax_nets:NnxMLP", module_kwargs={"width": 6})
    cfg = dataclasses.replace(cfg, model=model)
    fit = pipeline.fit_twins(jax.random.key(1), cohort, cfg, tmp_path)
    assert isinstance(fit.spec, FlaxSpec) and isinstance(fit.personal, FlaxParams)
    saved = pipeline.save_model(fit, cohort, cfg, tmp_path / "model")
    loaded = twinjax.load(tmp_path)
    assert loaded.spec == fit.spec
    for a, b in zip(jax.tree.leaves(saved.personal), jax.tree.leaves(loaded.personal), strict=True):
        np.testing.assert_array_equal(a, b)
    key = jax.random.key(7)
    before = tb.forecast(saved, cohort, horizon=4, key=key, n_samples=8)
    after = tb.forecast(loaded, cohort, horizon=4, key=key, n_samples=8)
    pd.testing.assert_frame_equal(before, after)
    assert np.isfinite(after[["mean", "q05", "q95"]]).all().all()
    # a new individual gets a flax twin of its own from the loaded one
    new = dataclasses.replace(cohort.take([0]), subject_ids=("new",))
    grown = tb.personalize(loaded, new, key=jax.random.key(2), steps=4)
    assert grown.subject_ids[-1] == "new" and isinstance(grown.personal, FlaxParams)


def test_the_readme_example_is_the_scripts():
    """The README's flax example is code of examples/flax_twin.py, which CI runs
    (tests/test_docs.py), so it runs as written."""
    import re
    from pathlib import Path

    root = Path(__file__).resolve().parents[2]
    readme = (root / "README.md").read_text()
    start = readme.index("## A flax module as a twin's network")
    section = readme[start : readme.index("\n## ", start + 1)]
    blocks = re.findall(r"```python\n(.*?)```", section, re.S)
    script = (root / "examples" / "flax_twin.py").read_text()
    assert len(blocks) == 2 and all(block in script for block in blocks)
