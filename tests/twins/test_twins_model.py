"""Recurrent twin: vmapped cohort vs per-individual calls, masking, rollout consistency."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from twinjax.data import Series, synthetic_cohort
from twinjax.twins import TwinSpec, apply, forecast, init_params, nll_loss
from twinjax.twins.cells import CELLS

jax.config.update("jax_enable_x64", False)


@pytest.fixture(scope="module")
def cohort():
    return synthetic_cohort(jax.random.key(0), n_individuals=5, n_steps=40)


def _spec(cell, attention=True):
    return TwinSpec(
        n_features=3,
        n_interventions=2,
        n_static=3,
        cell=cell,
        hidden=8,
        attention=attention,
        attention_dim=4,
    )


@pytest.mark.integration
@pytest.mark.parametrize("cell", sorted(CELLS))
def test_vmapped_cohort_equals_per_individual_calls(cohort, cell):
    spec = _spec(cell)
    keys = jax.random.split(jax.random.key(1), cohort.n_individuals)
    params = jax.vmap(init_params, in_axes=(0, None))(keys, spec)
    data = Series(cohort.values, cohort.mask, cohort.interventions, cohort.static)
    cohort_apply = jax.jit(jax.vmap(apply, in_axes=(0, None, 0)), static_argnums=1)
    mean, scale = cohort_apply(params, spec, data)
    cohort_loss = jax.jit(jax.vmap(nll_loss, in_axes=(0, None, 0)), static_argnums=1)
    losses = cohort_loss(params, spec, data)
    for i in range(cohort.n_individuals):
        p_i = jax.tree.map(lambda x, i=i: x[i], params)
        d_i = data.at(i)
        m_i, s_i = apply(p_i, spec, d_i)
        np.testing.assert_allclose(mean[i], m_i, atol=1e-5, rtol=1e-5)
        np.testing.assert_allclose(scale[i], s_i, atol=1e-5, rtol=1e-5)
        np.testing.assert_allclose(losses[i], nll_loss(p_i, spec, d_i), atol=1e-5, rtol=1e-5)


@pytest.mark.integration
@pytest.mark.parametrize("cell", sorted(CELLS))
def test_masked_value_never_changes_loss_or_predictions(cohort, cell):
    spec = _spec(cell)
    params = init_params(jax.random.key(2), spec)
    values, mask = cohort.values[0], cohort.mask[0]
    assert (~mask).sum() > 10
    garbage = np.where(mask, values, np.random.default_rng(0).normal(0, 1e3, values.shape))
    series = lambda v: Series(v, mask, cohort.interventions[0], cohort.static[0])
    assert nll_loss(params, spec, series(values)) == nll_loss(params, spec, series(garbage))
    grad = jax.grad(nll_loss)
    g1, g2 = grad(params, spec, series(values)), grad(params, spec, series(garbage))
    jax.tree.map(lambda a, b: np.testing.assert_array_equal(a, b), g1, g2)
    # and an observed value does change it (the test can fail)
    changed = values.copy()
    t, f = np.argwhere(mask[1:])[0] + np.array([1, 0])
    changed[t, f] += 1.0
    assert nll_loss(params, spec, series(changed)) != nll_loss(params, spec, series(values))


@pytest.mark.integration
@pytest.mark.parametrize("attention", [True, False])
def test_rollout_matches_teacher_forcing_on_its_own_predictions(cohort, attention):
    """Feeding the rollout's mean back through `apply` reproduces the rollout (1e-5)."""
    spec = _spec("lstm", attention)
    params = init_params(jax.random.key(3), spec)
    t, h = 25, 6
    values = np.asarray(cohort.values[1]).copy()
    mask = np.ones_like(cohort.mask[1])
    plan = cohort.interventions[1, t : t + h]
    series = lambda v: Series(v, mask, cohort.interventions[1], cohort.static[1])
    mean, scale = forecast(params, spec, series(values).window(0, t), plan)
    assert mean.shape == (h, 3)
    values[t : t + h] = np.asarray(mean)
    ref_mean, ref_scale = apply(params, spec, series(values).window(0, t + h))
    np.testing.assert_allclose(mean, ref_mean[t - 1 : t + h - 1], atol=1e-5, rtol=1e-5)
    np.testing.assert_allclose(scale, ref_scale[t - 1 : t + h - 1], atol=1e-5, rtol=1e-5)


@pytest.mark.integration
def test_counterfactual_plan_changes_forecast_and_samples_spread(cohort):
    spec = _spec("lstm")
    params = init_params(jax.random.key(4), spec)
    hist = Series(cohort.values, cohort.mask, cohort.interventions, cohort.static).at(2)
    hist = hist.window(0, 20)
    none = jnp.zeros((8, 2))
    dose = none.at[0, 0].set(2.0)
    m0, _ = forecast(params, spec, hist, none)
    m1, _ = forecast(params, spec, hist, dose)
    np.testing.assert_array_equal(m0[0], m1[0])  # the plan acts from the next step on
    assert jnp.abs(m0[1:] - m1[1:]).max() > 1e-6
    keys = jax.random.split(jax.random.key(5), 64)
    samples, _ = jax.vmap(lambda k: forecast(params, spec, hist, none, key=k))(keys)
    assert samples.shape == (64, 8, 3)
    assert jnp.all(jnp.isfinite(samples)) and samples[:, -1].std(0).min() > 0


@pytest.mark.integration
@pytest.mark.parametrize("cell, chunk", [("lstm", 4), ("gru", 7)])  # 7 does not divide 30: uses 6
def test_rematerialized_chunks_give_the_same_states_and_gradients(cell, chunk):
    """``run_cell(..., remat_chunk=k)`` recomputes activations in the backward pass; values and
    gradients equal the plain scan (1e-5: the same operations, fused differently)."""
    from twinjax.twins.cells import get_cell, run_cell

    p = get_cell(cell).init(jax.random.key(0), 5, 8)
    xs = jax.random.normal(jax.random.key(1), (30, 5))
    loss = lambda p, k: jnp.sum(jnp.sin(run_cell(cell, p, xs, remat_chunk=k)[1]))
    np.testing.assert_allclose(loss(p, chunk), loss(p, 0), rtol=1e-5)
    g_plain, g_remat = jax.grad(loss)(p, 0), jax.grad(loss)(p, chunk)
    jax.tree.map(
        lambda a, b: np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6), g_plain, g_remat
    )


@pytest.mark.parametrize("cell", sorted(CELLS))
def test_one_training_step_program_for_every_step(cell):
    """No parameter starts weakly typed: an optimizer step returns strong types, so a weak leaf
    (a Python-float fill) would make every jitted training step compile twice, for the first
    call and again for all the others (a tiny app run paid it in each fit)."""
    import optax

    spec = TwinSpec(n_features=2, n_interventions=1, n_static=1, cell=cell, hidden=4,
                    attention_dim=4)  # fmt: skip
    params = init_params(jax.random.key(0), spec)
    weak = [jax.tree_util.keystr(p) for p, leaf in jax.tree_util.tree_leaves_with_path(params)
            if leaf.weak_type]  # fmt: skip
    assert not weak, weak
    opt = optax.adam(1e-3)

    @jax.jit
    def step(params, state):
        updates, state = opt.update(jax.tree.map(jnp.ones_like, params), state, params)
        return optax.apply_updates(params, updates), state

    state = opt.init(params)
    for _ in range(3):
        params, state = step(params, state)
    assert step._cache_size() == 1
