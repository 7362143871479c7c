"""Personal fine-tuning sharded over 8 (virtual CPU) devices equals the single-device fit.

The sharded step runs the same per-individual computation (each individual's windows come from
its own folded key), so the only differences are float rounding from a different vmap width per
device (XLA may fuse and reassociate differently): relative and absolute tolerance 1e-5 on
parameters around unit scale and on validation NLLs (observed differences are at most 2.4e-7).
Chunked forecasts (evaluation by memory) are checked against all-at-once ones the same way.
"""

import jax
import numpy as np
import pytest

from twinjax.data import prepare, synthetic_cohort
from twinjax.train import PersonalizeOptions, PopulationOptions, fit_personal, fit_population
from twinjax.twins import TwinSpec, init_params

TOL = dict(rtol=1e-5, atol=1e-5)


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    assert jax.local_device_count() == 8, "tests/conftest.py forces 8 CPU devices"
    cohort = synthetic_cohort(jax.random.key(0), n_individuals=12, n_steps=48)
    spec = TwinSpec.for_cohort(cohort, hidden=4, attention_dim=4)
    arrays, _ = prepare(cohort)
    pop = init_params(jax.random.key(1), spec)
    options = PersonalizeOptions(steps=4, window=10, batch_windows=2, eval_every=2, progress=False,
                                 adapt="all")  # every part moves: all are compared
    one = _fit(spec, arrays, pop, options, tmp_path_factory.mktemp("one"), jax.devices()[:1])
    moved = np.abs(np.asarray(one[0].cell.wx) - np.asarray(pop.cell.wx)).max()
    assert moved > 0  # the fit did change the twins
    return spec, arrays, pop, options, one


def _fit(spec, arrays, pop, options, path, devices, **changes):
    opts = options._replace(**changes)
    return fit_personal(jax.random.key(2), spec, pop, arrays, opts, path, devices=devices)


def _assert_same(a, b):
    jax.tree.map(lambda x, y: np.testing.assert_allclose(x, y, **TOL), a, b)


@pytest.mark.integration
def test_sharded_equals_one_device(tmp_path, setup):
    # 12 individuals over 8 devices: one chunk padded to 16 (2 rows a device)
    spec, arrays, pop, options, one = setup
    eight = _fit(spec, arrays, pop, options, tmp_path, jax.devices())
    assert eight[1].shape == (12,)
    _assert_same(one, eight)


@pytest.mark.integration
def test_memory_chunks_over_devices_equal_one_device(tmp_path, setup):
    # a memory budget of a few bytes: chunks of one individual per device (2 chunks of 8 rows,
    # the second padded)
    spec, arrays, pop, options, one = setup
    eight = _fit(spec, arrays, pop, options, tmp_path, jax.devices(), memory_fraction=1e-12)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["chunk0000", "chunk0001"]
    _assert_same(one, eight)


def test_forecasts_in_chunks_equal_all_at_once(setup):
    # evaluation is chunked by memory the same way (pipeline.forecast_rows): 5 + 5 + 2 rows,
    # the chunks' targets padded to the longest segment (outside it: inside False)
    from twinjax.eval.forecasts import chunked_predictions

    spec, arrays, pop, *_ = setup
    personal = jax.tree.map(lambda x: np.stack([x * (1 + 0.01 * i) for i in range(12)]), pop)
    whole = chunked_predictions(personal, spec, arrays, arrays.test, history=9, shared=False)
    parts = chunked_predictions(
        personal, spec, arrays, arrays.test, history=9, shared=False, rows=5
    )
    inside = whole[3]
    np.testing.assert_array_equal(parts[3], inside)
    np.testing.assert_array_equal(parts[2][inside], whole[2][inside])
    for a, b in zip(parts[:2], whole[:2], strict=True):
        np.testing.assert_allclose(a[inside], b[inside], **TOL)


@pytest.mark.integration
@pytest.mark.parametrize("batch", [0, 7], ids=["all", "batch7"])
def test_population_fit_sharded_equals_one_device(tmp_path, setup, batch):
    """The population step with its rows split over 8 devices (12 individuals: padded to 16 with
    weight-0 rows; a random batch of 7 padded to 8) equals the one-device step: the same
    windows (keys drawn before the split), losses and gradients summed over devices (psum)
    instead of within one; float rounding only (1e-5, as above)."""
    spec, arrays, _, _, _ = setup
    options = PopulationOptions(steps=4, window=10, batch_windows=2, batch=batch, progress=False)
    fit = lambda devices, path: fit_population(
        jax.random.key(3), spec, arrays, options, path, devices=devices
    )
    one, losses_one = fit(jax.devices()[:1], tmp_path / "one")
    eight, losses_eight = fit(jax.devices(), tmp_path / "eight")
    _assert_same(losses_one, losses_eight)
    _assert_same(one, eight)
    start = init_params(jax.random.split(jax.random.key(3))[0], spec)
    assert np.abs(np.asarray(one.cell.wx) - np.asarray(start.cell.wx)).max() > 0  # it trained


@pytest.mark.integration
@pytest.mark.parametrize("shared", [True, False], ids=["population", "personal"])
def test_forecasts_split_over_devices_equal_one_device(setup, shared):
    """``cohort_predictions(mesh=...)``: 12 individuals over 8 devices (padded to 16, cut back)
    give the one-device forecasts (1e-5, as above), for a shared and per-individual twins."""
    from twinjax.train.devices import individuals_mesh
    from twinjax.twins import cohort_predictions

    spec, arrays, pop, _, one = setup
    params = pop if shared else one[0]
    forecast = lambda mesh: cohort_predictions(
        params, spec, arrays, arrays.val, history=9, shared=shared, mesh=mesh
    )
    alone, split = forecast(None), forecast(individuals_mesh(jax.devices()))
    assert split[0].shape == alone[0].shape and split[0].shape[0] == 12
    _assert_same(alone, split)
