"""Bucketing: bucket means are weighted means of disjoint accepted buckets; sharded == serial."""

import jax
import jax.flatten_util
import jax.numpy as jnp
import numpy as np
import pytest
from fed_helpers import aggregate, updates

from twinjax import federated as fl


def _bucketed(u, w, acc, size, key=0):
    return fl.bucket_means(
        jnp.asarray(u), jnp.asarray(w), jnp.asarray(acc), jax.random.key(key), size=size
    )


@pytest.mark.parametrize("size", [2, 3])
def test_bucket_means_are_weighted_means_of_disjoint_accepted_buckets(size):
    # identity columns in front reveal each bucket's members: row i puts w_i / total in column i
    U, ACC = updates()
    w = np.random.default_rng(3).uniform(1, 3, 9).astype(np.float32)
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


INNER = {"mean": fl.mean(), "median": fl.median(), "trimmed_mean": fl.trimmed_mean(0.2)}


@pytest.mark.parametrize("name", ["mean", "median", "trimmed_mean"])
def test_bucketing_with_size_one_or_of_the_mean_changes_nothing(name):
    U, ACC = updates()
    w = np.random.default_rng(4).uniform(1, 3, 9).astype(np.float32)
    bad = np.where(ACC[:, None], U, np.nan).astype(np.float32)
    plain = aggregate(INNER[name], np.where(ACC[:, None], U, 0), w, ACC)
    # size 1: the accepted rows, permuted, and the NaN rows not accepted
    means, total, ok = _bucketed(bad, w, ACC, 1)
    single = aggregate(INNER[name], means, total, ok)
    # a one-client bucket mean is (w x) / w: x to float32 rounding of O(1) updates (atol),
    # which a sum that cancels to ~0.01 shows as a relative error above 1e-6
    np.testing.assert_allclose(single, plain, rtol=1e-6, atol=1e-6)
    assert fl.bucketed(INNER[name], 1) is INNER[name]
    key = jax.random.key(5)
    paired = aggregate(fl.bucketed(INNER[name], 2), bad, w, ACC, key=key)
    assert np.all(np.isfinite(paired))
    if name == "mean":  # weighted means of buckets, weighted by bucket weight: the mean
        np.testing.assert_allclose(paired, plain, rtol=1e-5, atol=1e-6)
    else:  # the buckets come from the round key's bucket stream
        k = fl.round_keys(key).bucket
        means, _, ok = fl.bucket_means(
            jnp.asarray(bad), jnp.asarray(w), jnp.asarray(ACC), k, size=2
        )
        m = np.asarray(means)[np.asarray(ok)]  # 4 buckets, floor(0.2 * 4) = 0 trimmed
        want = np.median(m, axis=0) if name == "median" else m.mean(axis=0)
        np.testing.assert_allclose(paired, want, rtol=1e-5)
        assert not np.allclose(paired, plain)


@pytest.mark.slow  # like the sharded median round of test_fed_execution: 2-core CI budget
def test_bucketed_median_round_equals_serial_under_shard_map():
    assert jax.device_count() == 8
    data, _ = fl.synthetic_alpha_beta(1, num_clients=12, dim=5, num_classes=3, max_samples=30)
    out = {}
    for backend, size in (("serial", 2), ("vmap", 2), ("shard_map", 2), ("vmap", 1)):
        mesh = fl.client_mesh() if backend == "shard_map" else None
        execution = fl.Execution(backend=backend, mesh=mesh, jit=True,  # serial: jitted loop
                                 compiler_options=fl.FAST_COMPILE)  # fmt: skip
        aggregator = fl.screen(fl.per_step(fl.bucketed(fl.median(), size), batch_size=16))
        algo = fl.fedavg(
            fl.logistic_loss, clients_per_round=7, local_lr=0.1, batch_size=16, local_epochs=1,
            aggregator=aggregator, simulation=fl.Simulation(byzantine=fl.Byzantine(0.25)),
            execution=execution,
        )  # fmt: skip
        state = algo.init(fl.logistic_init(5, 3), num_clients=data.num_clients)
        out[backend, size] = jax.flatten_util.ravel_pytree(
            algo.apply(state, data, jax.random.key(2))[0].params
        )[0]
    for backend in ("vmap", "shard_map"):
        np.testing.assert_allclose(out[backend, 2], out["serial", 2], rtol=1e-5, atol=1e-5)
    assert not np.allclose(out["vmap", 2], out["vmap", 1])  # the buckets were used
