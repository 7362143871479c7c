"""Normalization: masked statistics vs numpy loops, inversion, per-individual stats, save/load."""

import json

import jax
import numpy as np
import pytest

from twinjax.data.normalize import (
    NormStats,
    denormalize,
    denormalize_scale,
    fit_normalizer,
    make_normalizer,
    normalize,
    stats_from_dict,
    stats_to_dict,
)


def cohort_arrays(seed=0, n=4, t=30, f=3):
    rng = np.random.default_rng(seed)
    loc = rng.normal(size=(n, 1, f)) * 5
    values = (loc + rng.gamma(2.0, size=(n, t, f)) * rng.uniform(0.5, 3, size=(n, 1, f))).astype(
        np.float32
    )
    mask = rng.random((n, t, f)) < 0.6
    return np.where(mask, values, 0).astype(np.float32), mask


def test_population_stats_match_numpy():
    values, mask = cohort_arrays()
    stats = fit_normalizer(values, mask)
    for j in range(values.shape[-1]):
        obs = values[..., j][mask[..., j]].astype(np.float64)
        np.testing.assert_allclose(stats.mean[j], obs.mean(), rtol=1e-5)
        np.testing.assert_allclose(stats.std[j], obs.std(), rtol=1e-5)


def test_per_individual_stats_match_numpy_loop():
    values, mask = cohort_arrays(1)
    mask[2, :, 1] = False
    mask[2, 5, 1] = True  # one observation: falls back to the population stats
    stats = fit_normalizer(values, mask, per_individual=True)
    pop = fit_normalizer(values, mask)
    assert stats.mean.shape == (4, 3)
    for i in range(values.shape[0]):
        for j in range(values.shape[-1]):
            obs = values[i, :, j][mask[i, :, j]].astype(np.float64)
            if len(obs) < 2:
                np.testing.assert_allclose(stats.mean[i, j], pop.mean[j], rtol=1e-6)
                np.testing.assert_allclose(stats.std[i, j], pop.std[j], rtol=1e-6)
            else:
                np.testing.assert_allclose(stats.mean[i, j], obs.mean(), rtol=1e-5, atol=1e-5)
                np.testing.assert_allclose(stats.std[i, j], obs.std(), rtol=1e-5)
    z = normalize(stats, values, mask=mask)
    for i in (0, 1, 3):  # each individual's observed normalized values have mean 0 and std 1
        np.testing.assert_allclose(np.asarray(z[i]).sum(0) / mask[i].sum(0), 0, atol=1e-5)
        var = (np.asarray(z[i]) ** 2).sum(0) / mask[i].sum(0)
        np.testing.assert_allclose(var, 1.0, rtol=1e-4)


@pytest.mark.parametrize("per_individual", [False, True])
def test_normalize_inverts(per_individual):
    values, mask = cohort_arrays(2)
    stats = fit_normalizer(values, mask, per_individual=per_individual)
    back = denormalize(stats, normalize(stats, values))
    np.testing.assert_allclose(back, values, atol=1e-6 * np.abs(values).max(), rtol=1e-6)
    scale = np.full(values.shape, 2.0, np.float32)
    expected = 2.0 * (stats.std[:, None, :] if per_individual else stats.std)
    np.testing.assert_allclose(
        denormalize_scale(stats, scale), np.broadcast_to(expected, values.shape), rtol=1e-6
    )


def test_per_individual_stats_work_under_vmap():
    values, mask = cohort_arrays(3)
    stats = fit_normalizer(values, mask, per_individual=True)
    z = jax.vmap(normalize)(stats, values)
    np.testing.assert_allclose(z, normalize(stats, values), rtol=1e-6)


def test_constant_and_unobserved_features_get_unit_std():
    values = np.ones((2, 5, 2), np.float32) * 3.0
    mask = np.ones_like(values, bool)
    mask[..., 1] = False
    stats = fit_normalizer(values, mask)
    np.testing.assert_array_equal(stats.std, [1.0, 1.0])
    np.testing.assert_array_equal(stats.mean, [3.0, 0.0])
    assert np.isfinite(normalize(stats, values)).all()


def test_stats_dict_round_trip_through_json():
    values, mask = cohort_arrays(4)
    stats = fit_normalizer(values, mask, per_individual=True)
    back = stats_from_dict(json.loads(json.dumps(stats_to_dict(stats))))
    assert isinstance(back, NormStats)
    np.testing.assert_array_equal(back.mean, stats.mean)
    np.testing.assert_array_equal(back.std, stats.std)


def test_make_normalizer_from_config_names():
    values, mask = cohort_arrays(5)
    none = make_normalizer("none")
    np.testing.assert_array_equal(none.normalize(none.fit(values, mask), values), values)
    ind = make_normalizer("individual").fit(values, mask)
    assert ind.mean.shape == (4, 3)
    # TypeError from the Literal annotation under the test-time type checker, else ValueError
    with pytest.raises((TypeError, ValueError), match="robust"):
        make_normalizer("robust")


def test_stats_save_and_restore_with_orbax(tmp_path):
    import orbax.checkpoint as ocp

    values, mask = cohort_arrays(6)
    stats = fit_normalizer(values, mask, per_individual=True)
    with ocp.StandardCheckpointer() as ckpt:
        ckpt.save(tmp_path / "stats", stats)
        ckpt.wait_until_finished()
        back = ckpt.restore(tmp_path / "stats", jax.eval_shape(lambda: stats))
    assert isinstance(back, NormStats)
    np.testing.assert_array_equal(back.mean, stats.mean)
    np.testing.assert_array_equal(back.std, stats.std)
