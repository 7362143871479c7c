"""Robust aggregators against numpy references; screening of NaN/inf and oversized updates."""

import jax
import jax.flatten_util
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


def _bucketed(u, w, acc, size, key=0):
    return agg.bucket_means(
        jnp.asarray(u), jnp.asarray(w), jnp.asarray(acc), jax.random.key(key), size=size
    )


@pytest.mark.parametrize("size", [2, 3])
def test_bucket_means_are_weighted_means_of_disjoint_accepted_buckets(size):
    # identity columns in front reveal each bucket's members: row i puts w_i / total in column i
    w = RNG.uniform(1, 3, 9).astype(np.float32)
    u = np.concatenate([np.eye(9, dtype=np.float32), U], axis=1)
    u[[2, 6]] = np.nan  # the rejected rows
    means, total, ok = _bucketed(u, w, ACC, size)
    assert means.shape == (-(-9 // size), 9 + 7)
    members = [np.flatnonzero(np.asarray(m[:9]) > 0) for m in means]
    # 7 accepted rows fill the first buckets; a bucket without one is not accepted
    assert [len(m) for m in members] == {2: [2, 2, 2, 1, 0], 3: [3, 3, 1]}[size]
    assert sorted(np.concatenate(members)) == list(np.flatnonzero(ACC))
    np.testing.assert_array_equal(ok, [len(m) > 0 for m in members])
    assert np.all(np.isfinite(means))
    for m, mean, t in zip(members, np.asarray(means), np.asarray(total), strict=True):
        np.testing.assert_allclose(t, w[m].sum(), rtol=1e-6)
        want = w[m] @ U[m] / w[m].sum() if len(m) else np.zeros(7)
        np.testing.assert_allclose(mean[9:], want, rtol=1e-5, atol=1e-6)
    # fixed key: fixed buckets; another key redraws them
    again = _bucketed(u, w, ACC, size)[0]
    np.testing.assert_array_equal(again, means)
    assert any(not np.array_equal(_bucketed(u, w, ACC, size, k)[0], means) for k in (1, 2, 3))


@pytest.mark.parametrize("name", ["mean", "median", "trimmed_mean"])
def test_bucketing_with_size_one_or_of_the_mean_changes_nothing(name):
    w = RNG.uniform(1, 3, 9).astype(np.float32)
    bad = np.where(ACC[:, None], U, np.nan).astype(np.float32)
    plain = fl.aggregate(name, jnp.asarray(np.where(ACC[:, None], U, 0)), jnp.asarray(w), ACC,
                         trim=0.2)  # fmt: skip
    # size 1: the accepted rows, permuted, and the NaN rows not accepted
    single = fl.aggregate(name, *_bucketed(bad, w, ACC, 1), trim=0.2)
    np.testing.assert_allclose(single, plain, rtol=1e-6)
    key = jax.random.key(5)
    paired = fl.aggregate(name, jnp.asarray(bad), jnp.asarray(w), jnp.asarray(ACC), trim=0.2,
                          bucket_size=2, key=key)  # fmt: skip
    assert np.all(np.isfinite(paired))
    if name == "mean":  # weighted means of buckets, weighted by bucket weight: the mean
        np.testing.assert_allclose(paired, plain, rtol=1e-5, atol=1e-6)
    else:
        means, _, ok = agg.bucket_means(jnp.asarray(bad), jnp.asarray(w), ACC, key, size=2)
        m = np.asarray(means)[np.asarray(ok)]  # 4 buckets, floor(0.2 * 4) = 0 trimmed
        want = np.median(m, axis=0) if name == "median" else m.mean(axis=0)
        np.testing.assert_allclose(paired, want, rtol=1e-5)
        assert not np.allclose(paired, plain)


def test_bucketing_per_step_keeps_the_step_multiplier():
    # every client ran steps[i] steps of the same v: bucket means of per-step updates are v
    steps = np.array([100, 300, 5000, 120, 1600, 150, 90, 800, 200], np.float32)
    v = RNG.normal(size=7).astype(np.float32)
    u = np.where(ACC[:, None], steps[:, None] * v, np.nan).astype(np.float32)
    w = np.ones(9, np.float32)
    got = agg.aggregate_per_step("median", jnp.asarray(u), jnp.asarray(w), jnp.asarray(ACC),
                                 jnp.asarray(steps), bucket_size=3, key=jax.random.key(0))  # fmt: skip
    np.testing.assert_allclose(got, steps[ACC].mean() * v, rtol=1e-5)


@pytest.mark.slow  # like the sharded median round of test_fed_execution: 2-core CI budget
def test_bucketed_median_round_equals_serial_under_shard_map():
    assert jax.device_count() == 8
    data, _ = fl.synthetic_alpha_beta(1, num_clients=12, dim=5, num_classes=3, max_samples=30)
    out = {}
    for backend, size in (("serial", 2), ("vmap", 2), ("shard_map", 2), ("vmap", 1)):
        cfg = fl.fedavg(
            fl.logistic_loss, clients_per_round=7, local_lr=0.1, batch_size=16, local_epochs=1,
            aggregator="median", per_step=True, bucket_size=size, backend=backend,
            mesh=fl.client_mesh() if backend == "shard_map" else None,
            byzantine=fl.Byzantine(fraction=0.25),
        )  # fmt: skip
        algo = fl.build(cfg, jit=True, compiler_options=fl.FAST_COMPILE)  # serial: jitted loop
        state = algo.init(fl.logistic_init(5, 3), num_clients=data.num_clients)
        out[backend, size] = jax.flatten_util.ravel_pytree(
            algo.round(state, data, jax.random.key(2))[0].params
        )[0]
    for backend in ("vmap", "shard_map"):
        np.testing.assert_allclose(out[backend, 2], out["serial", 2], rtol=1e-5, atol=1e-5)
    assert not np.allclose(out["vmap", 2], out["vmap", 1])  # the buckets were used
