"""Twin-driven agents: vmapped twins inside the epidemic step."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from twinjax import abm
from twinjax.adapters.twin_agents import (
    TwinCoupling,
    fit_twins,
    predict_next,
    simulate_with_twins,
)
from twinjax.data import Series, synthetic_cohort
from twinjax.twins import TwinSpec, apply

N, W = 32, 16


@pytest.fixture(scope="module")
def twins():
    cohort = synthetic_cohort(jax.random.key(0), n_individuals=N, n_steps=32)
    v = cohort.values[:, :W]
    mu, sd = v.mean((0, 1)), v.std((0, 1)) + 1e-6
    windows = Series(
        jnp.asarray((v - mu) / sd, jnp.float32),
        jnp.asarray(cohort.mask[:, :W]),
        jnp.asarray(cohort.interventions[:, :W], jnp.float32),
        jnp.asarray(cohort.static, jnp.float32),
    )
    spec = TwinSpec(n_features=v.shape[-1], n_interventions=windows.interventions.shape[-1],
                    n_static=windows.static.shape[-1], cell="gru", hidden=8, attention=False)  # fmt: skip
    params = fit_twins(jax.random.key(1), spec, windows, steps=10)
    return spec, params, windows


def test_vmapped_twins_match_per_agent_calls(twins):
    spec, params, windows = twins
    mean, scale = predict_next(params, spec, windows)
    for i in range(3):
        p_i = jax.tree.map(lambda x, i=i: x[i], params)
        m_i, s_i = apply(p_i, spec, windows.at(i))
        np.testing.assert_allclose(mean[i], m_i[-1], atol=1e-5)
        np.testing.assert_allclose(scale[i], s_i[-1], atol=1e-5)


def _run(twins, strength):
    spec, params, windows = twins
    agents = abm.init_agents(jax.random.key(2), N, 0.1)
    layers = (abm.Layer(abm.WellMixed(), 0.5),)
    seir = abm.SEIRParams(gamma=0.2)
    coupling = TwinCoupling(feature=0, ref_mean=0.0, ref_sd=1.0, strength=strength,
                            sick_feature=2, sick_value=-2.0)  # fmt: skip
    run = jax.jit(
        lambda k: simulate_with_twins(k, agents, seir, layers, 20, params, spec, windows, coupling)
    )
    return run(jax.random.key(3)), (agents, seir, layers)


@pytest.mark.integration
def test_zero_coupling_is_the_plain_epidemic(twins):
    (state, (_, rel_sus)), (agents, seir, layers) = _run(twins, 0.0)
    plain, _ = abm.simulate(jax.random.key(3), agents, seir, layers, 20)
    np.testing.assert_array_equal(state.agents.status, plain.agents.status)
    np.testing.assert_array_equal(rel_sus, 1.0)


def test_coupled_susceptibility_follows_the_twins(twins):
    spec, params, windows = twins
    (_, (_, rel_sus)), _ = _run(twins, 0.5)
    mean, _ = predict_next(params, spec, windows)
    want = np.clip(1 + 0.5 * np.asarray(mean[:, 0]), 0.2, 3.0)
    np.testing.assert_allclose(rel_sus[0], want, rtol=1e-5)
    assert float(jnp.std(rel_sus[0])) > 0.01  # personal, not uniform


@pytest.mark.integration
@pytest.mark.parametrize("cell, attention", [("gru", False), ("lstm", True)])
def test_streamed_twin_equals_apply_over_the_whole_history(cell, attention):
    from twinjax.twins import init_params, stream_init, stream_step

    cohort = synthetic_cohort(jax.random.key(4), n_individuals=1, n_steps=30)
    f32 = lambda x: jnp.asarray(x[0], jnp.float32)
    full = Series(f32(cohort.values), jnp.asarray(cohort.mask[0]), f32(cohort.interventions),
                  f32(cohort.static))  # fmt: skip
    spec = TwinSpec(n_features=3, n_interventions=2, n_static=3, cell=cell, hidden=8,
                    attention=attention, attention_dim=4)  # fmt: skip
    params = init_params(jax.random.key(5), spec)
    state = stream_init(params, spec, full.window(0, 10), cache=30)
    # compiled whole (one program per history length, not one per operation)
    whole, step = jax.jit(apply, static_argnums=1), jax.jit(stream_step, static_argnums=1)
    for t in range(10, 30):
        mean, scale = whole(params, spec, full.window(0, t))
        np.testing.assert_allclose(state.mean, mean[-1], atol=1e-5, rtol=1e-5)
        np.testing.assert_allclose(state.scale, scale[-1], atol=1e-5, rtol=1e-5)
        state = step(params, spec, state, *(x[t] for x in full[:3]))


@pytest.mark.integration
def test_carried_simulation_equals_rerunning_each_twin_over_its_history(twins):
    """The carried-state run vs a plain loop that re-runs every twin over its whole growing
    series each step (cache large enough that attention would see all of it)."""
    from twinjax.adapters.twin_agents import sick_override, susceptibility

    spec, params, windows = twins
    agents = abm.init_agents(jax.random.key(2), N, 0.1)
    layers = (abm.Layer(abm.WellMixed(), 0.5),)
    seir = abm.SEIRParams(gamma=0.2)
    c = TwinCoupling(feature=0, ref_mean=0.0, ref_sd=1.0, strength=0.5, sick_feature=2,
                     sick_value=-2.0)  # fmt: skip
    steps, key = 6, jax.random.key(3)
    _, (_, rel_sus) = simulate_with_twins(
        key, agents, seir, layers, steps, params, spec, windows, c, mode="carry", cache=W + steps
    )
    from twinjax.abm.epidemic import init, step

    state, series = init(agents), windows
    cohort_apply = jax.jit(jax.vmap(apply, in_axes=(0, None, 0)), static_argnums=1)
    for t, k in enumerate(jax.random.split(key, steps)):
        mean = cohort_apply(params, spec, series)[0][:, -1]
        want = susceptibility(mean, c)
        np.testing.assert_allclose(rel_sus[t], want, atol=1e-5, rtol=1e-5)
        state = state._replace(agents=state.agents._replace(rel_sus=rel_sus[t]))
        state, _ = step(state, k, seir, layers)
        new = sick_override(mean, state.agents.status == abm.I, c)
        grow = lambda a, x: jnp.concatenate([a, x[:, None]], axis=1)
        series = Series(grow(series.values, new), grow(series.mask, jnp.ones_like(new, bool)),
                        grow(series.interventions, jnp.zeros(series.interventions[:, 0].shape)),
                        series.static)  # fmt: skip
