"""Robust aggregators against numpy references; screening of NaN/inf and oversized updates."""

import jax.numpy as jnp
import numpy as np
import pytest

from twinjax import federated as fl
from twinjax.federated import aggregation as agg

RNG = np.random.default_rng(0)
U = RNG.normal(size=(9, 7)).astype(np.float32)
ACC = np.array([1, 1, 0, 1, 1, 1, 0, 1, 1], bool)


def test_median_and_trimmed_mean_match_numpy():
    got = fl.coordinate_median(jnp.asarray(U), jnp.asarray(ACC))
    np.testing.assert_allclose(got, np.median(U[ACC], axis=0), rtol=1e-6)
    got = fl.trimmed_mean(jnp.asarray(U), jnp.asarray(ACC), 0.2)
    s = np.sort(U[ACC], axis=0)  # 7 accepted rows, floor(0.2 * 7) = 1 trimmed per side
    np.testing.assert_allclose(got, s[1:-1].mean(axis=0), rtol=1e-5)


def test_multi_krum_matches_bruteforce():
    f, select = 1, 3
    x = U[ACC]
    d = ((x[:, None] - x[None]) ** 2).sum(-1)
    scores = [np.sort(np.delete(d[i], i))[: len(x) - f - 2].sum() for i in range(len(x))]
    want = x[np.argsort(scores)[:select]].mean(axis=0)
    got = fl.multi_krum(jnp.asarray(U), jnp.asarray(ACC), byzantine=f, select=select)
    np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-5)


def test_weighted_mean_ignores_rejected_rows():
    w = RNG.uniform(1, 5, 9).astype(np.float32)
    bad = U.copy()
    bad[2] = np.nan
    got = fl.weighted_mean(jnp.asarray(np.where(ACC[:, None], bad, 0)), jnp.asarray(w), ACC)
    np.testing.assert_allclose(got, (w[ACC] @ U[ACC]) / w[ACC].sum(), rtol=1e-5)


@pytest.mark.parametrize("poison", [np.nan, np.inf, 1e6])
def test_screen_rejects_and_counts(poison):
    u = U.copy()
    u[[0, 4]] = poison
    w = np.ones(9, np.float32)
    w[8] = 0.0  # zero-weight (padding) rows are not counted as rejected
    out, accepted, rejected = fl.screen_updates(jnp.asarray(u), jnp.asarray(w), max_norm=100.0)
    assert int(rejected) == 2
    assert not accepted[0] and not accepted[4] and not accepted[8] and accepted[1]
    assert np.all(np.isfinite(out))
    agg = fl.aggregate("median", out, jnp.asarray(w), accepted)
    np.testing.assert_allclose(agg, np.median(U[[1, 2, 3, 5, 6, 7]], axis=0), rtol=1e-6)


@pytest.mark.parametrize("name", ["mean", "median", "trimmed_mean"])
def test_aggregate_per_step_undoes_unequal_local_work(name):
    # client i ran steps[i] local steps of the same per-step update v; row 2 sends NaN
    rng = np.random.default_rng(1)
    steps = np.array([100, 300, 5000, 120, 1600, 150, 90, 800, 200], np.float32)
    w = rng.uniform(1, 3, 9).astype(np.float32)
    v = rng.normal(size=7).astype(np.float32)
    u = steps[:, None] * v
    u[2] = np.nan
    out, accepted, _ = fl.screen_updates(jnp.asarray(u), jnp.asarray(w))
    ok = np.arange(9) != 2
    assert np.array_equal(accepted, ok)
    got = agg.aggregate_per_step(name, out, jnp.asarray(w), accepted, jnp.asarray(steps), trim=0.2)
    mean_steps = (w[ok] * steps[ok]).sum() / w[ok].sum()  # the rejected row's 5000 is out
    np.testing.assert_allclose(got, mean_steps * v, rtol=1e-5)
    # of the raw updates, the median / trimmed mean scale v by a typical client's step count
    s = np.sort(steps[ok])  # 8 accepted: floor(0.2 * 8) = 1 trimmed per side
    typical = {"mean": mean_steps, "median": np.median(s), "trimmed_mean": s[1:-1].mean()}
    raw = fl.aggregate(name, out, jnp.asarray(w), accepted, trim=0.2)
    np.testing.assert_allclose(raw, typical[name] * v, rtol=1e-5)
