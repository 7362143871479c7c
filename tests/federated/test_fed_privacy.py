"""DP-FedAvg pieces (clipping, noise, adaptive clip norm, accounting) and secure aggregation."""

import dp_accounting
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax.flatten_util import ravel_pytree

from twinjax import federated as fl
from twinjax.federated import privacy, secagg


def test_clip_and_noise_statistics():
    u = jnp.asarray(np.random.default_rng(0).normal(size=(6, 4000)).astype(np.float32))
    clipped, unclipped = privacy.clip_updates(u, jnp.float32(3.0))
    np.testing.assert_allclose(np.linalg.norm(clipped, axis=1), 3.0, rtol=1e-5)
    assert not np.any(unclipped)  # norms ~ sqrt(4000) >> 3
    cfg = fl.DPConfig(noise_multiplier=1.5, clip_norm=3.0)
    zero = jnp.zeros(4000)
    noisy = privacy.noisy_mean(zero, jnp.float32(3.0), 4.0, jax.random.key(0), cfg)
    # noise std z * C / expected clients = 1.125; sample std of 4000 draws within 5%
    assert abs(float(jnp.std(noisy)) / 1.125 - 1) < 0.05


def test_adaptive_noise_split_keeps_total_noise():
    cfg = fl.DPConfig(noise_multiplier=1.0, adaptive=True, quantile_noise=5.0)
    z_delta = privacy.update_noise_multiplier(cfg)
    # Andrew et al.: z^-2 = z_delta^-2 + (2 sigma_b)^-2
    assert z_delta**-2 + (2 * 5.0) ** -2 == pytest.approx(1.0)
    grown = privacy.adapt_clip_norm(
        jnp.float32(1.0), jnp.zeros(10, bool), jnp.ones(10, bool), 10.0, jax.random.key(1),
        fl.DPConfig(adaptive=True, quantile_noise=1e-6),
    )  # fmt: skip
    # no client under the clip norm: C grows by exp(eta * gamma)
    np.testing.assert_allclose(grown, np.exp(0.2 * 0.5), rtol=1e-4)


@pytest.mark.parametrize("accountant", ["rdp", "pld"])
def test_epsilon_matches_dp_accounting(accountant):
    z, q, rounds, delta = 1.1, 0.05, 200, 1e-5
    event = dp_accounting.SelfComposedDpEvent(
        dp_accounting.PoissonSampledDpEvent(q, dp_accounting.GaussianDpEvent(z)), rounds
    )
    acc = (
        dp_accounting.rdp.RdpAccountant()
        if accountant == "rdp"
        else dp_accounting.pld.PLDAccountant()
    )
    want = acc.compose(event).get_epsilon(delta)
    got = fl.epsilon(z, q, rounds, delta=delta, accountant=accountant)
    assert got == pytest.approx(want, rel=1e-9)
    assert 0 < got < 10


def test_masked_sum_equals_plain_sum_with_dropouts():
    n, size, scale = 7, 500, 2.0**16
    ids = jnp.asarray([3, 11, 4, 0, 9, 2, 7])
    group = jnp.ones(n, bool)
    survived = jnp.asarray([1, 1, 0, 1, 1, 0, 1], bool)
    u = np.random.default_rng(1).normal(scale=0.3, size=(n, size)).astype(np.float32)
    key = jax.random.key(5)
    masked = jax.vmap(lambda x, me: secagg.mask_update(x, key, me, ids, group, scale=scale))(
        jnp.asarray(u), ids
    )
    want = u[np.asarray(survived)].sum(axis=0)
    got = secagg.unmasked_sum(masked, key, ids, group, survived, scale=scale)
    rel = np.linalg.norm(got - want) / np.linalg.norm(want)
    assert rel < 1e-4
    # a single masked vector says nothing about its update: it is uniform over uint32
    q = np.asarray(secagg.quantize(jnp.asarray(u[0]), scale)).astype(np.int64)
    m = np.asarray(masked[0]).astype(np.int64)
    assert np.mean(m == q) < 0.01
    assert abs(np.mean(m) / 2**32 - 0.5) < 0.05


@pytest.mark.integration
def test_server_receives_only_masked_updates(monkeypatch):
    train, _ = fl.synthetic_alpha_beta(2, num_clients=8, dim=5, num_classes=3, max_samples=24)
    params = fl.logistic_init(5, 3)
    common = dict(clients_per_round=4, local_lr=0.1, batch_size=16, local_epochs=1)
    seen = {}
    real = secagg.unmasked_sum

    def spy(masked, *args, **kw):
        seen["masked"] = np.asarray(masked)
        return real(masked, *args, **kw)

    monkeypatch.setattr(secagg, "unmasked_sum", spy)
    key = jax.random.key(0)
    unjitted = fl.Execution(backend="vmap", jit=False)
    plain = fl.fedavg(fl.logistic_loss, execution=unjitted, **common)
    secure = fl.fedavg(fl.logistic_loss, execution=unjitted, aggregator=fl.secure_mean(), **common)
    st_plain, _ = plain.apply(plain.init(params, num_clients=8), train, key)
    st_sec, _ = secure.apply(secure.init(params, num_clients=8), train, key)
    # apply() is not jitted here, so the spy sees the concrete arrays the server code received:
    # only uint32 masked vectors, none equal to a quantized update
    assert seen["masked"].dtype == np.uint32 and seen["masked"].shape[0] == 4
    for a, b in zip(jax.tree.leaves(st_plain.params), jax.tree.leaves(st_sec.params), strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-3, atol=1e-4)
    update = np.asarray(ravel_pytree(st_plain.params)[0])  # server lr 1
    q = np.asarray(secagg.quantize(jnp.asarray(update), 2.0**16)).astype(np.int64)
    for row in seen["masked"].astype(np.int64):
        assert np.mean(row == q) < 0.05


def test_dp_aggregator_clips_noises_and_keeps_its_clip_norm_in_state():
    dp = fl.DPConfig(noise_multiplier=0.7, clip_norm=2.0, adaptive=True, quantile_noise=1.0)
    u = jnp.asarray(np.random.default_rng(2).normal(size=(6, 50)).astype(np.float32))
    accepted = jnp.asarray([1, 1, 0, 1, 1, 1], bool)
    agg = fl.dp_mean(dp, expected_clients=5)
    state = agg.init()
    assert float(state.clip_norm) == 2.0
    key = jax.random.key(3)
    cohort = fl.RoundClients(weight=jnp.ones(6), accepted=accepted)
    out, new, metrics = agg.aggregate(state, u, cohort, key)
    keys = fl.round_keys(key)
    clipped, unclipped = privacy.clip_updates(u, jnp.float32(2.0))
    total = jnp.sum(jnp.where(accepted[:, None], clipped, 0.0), axis=0)
    want = privacy.noisy_mean(total, jnp.float32(2.0), 5.0, keys.noise, dp)
    np.testing.assert_allclose(out, want, rtol=1e-6)
    clip = privacy.adapt_clip_norm(jnp.float32(2.0), unclipped, accepted, 5.0, keys.clip, dp)
    np.testing.assert_allclose(new.clip_norm, clip, rtol=1e-6)
    assert float(new.clip_norm) != 2.0 and float(metrics["clip_norm"]) == float(new.clip_norm)
