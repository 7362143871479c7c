"""Sharded rounds (8 CPU devices, shard_map) equal the serial no-jit backend for every algorithm."""

import jax
import numpy as np
import pytest

from twinjax import federated as fl

TOL = 1e-5


@pytest.fixture(scope="module")
def tiny():
    train, _ = fl.synthetic_alpha_beta(1, num_clients=12, dim=5, num_classes=3, max_samples=30)
    return train, fl.logistic_init(5, 3)


HEAD = {"w": False, "b": True}
VARIANTS = {
    **{name: (name, {}) for name in fl.ALGORITHMS},
    "fedprox": (
        "fedprox",
        dict(simulation=fl.Simulation(straggler_fraction=0.5, dropout_prob=0.2)),
    ),
    "median": ("fedavg", dict(aggregator=fl.screen(fl.median()))),
    "dp_adaptive": (
        "fedavg",
        dict(
            sampling="poisson",
            aggregator=fl.screen(
                fl.dp_mean(fl.DPConfig(0.8, 0.5, adaptive=True), expected_clients=4)
            ),
        ),
    ),
    "secure_aggregation": (
        "fedavg",
        dict(aggregator=fl.secure_mean(), simulation=fl.Simulation(dropout_prob=0.3)),
    ),
    "ditto": ("fedavg", dict(personal=fl.PersonalConfig("ditto", lam=0.5))),
    "fedrep": ("fedavg", dict(personal=fl.PersonalConfig("fedrep", head=HEAD))),
}


def _run(name, kw, backend, data, params):
    mesh = fl.client_mesh() if backend == "shard_map" else None
    common = dict(clients_per_round=4, local_lr=0.1, batch_size=16, local_epochs=1)
    execution = fl.Execution(backend=backend, mesh=mesh, compiler_options=fl.FAST_COMPILE)
    algo = fl.ALGORITHMS[name](
        fl.logistic_loss, execution=execution, weighting="samples", **common, **kw
    )
    state = algo.init(params, num_clients=data.num_clients)
    key = jax.random.key(3)
    for r in range(2):
        state, metrics = algo.apply(state, data, jax.random.fold_in(key, r))
    return state, metrics


# client-side variants beyond the seven algorithms: slow on a 2-core CI box (pytest -m slow)
SLOW = {"ditto", "fedrep", "secure_aggregation", "dp_adaptive", "median"}
PARAMS = [pytest.param(v, marks=pytest.mark.slow) if v in SLOW else v for v in sorted(VARIANTS)]


@pytest.mark.integration
@pytest.mark.parametrize("variant", PARAMS)
def test_sharded_round_equals_serial(variant, tiny):
    assert jax.device_count() == 8
    data, params = tiny
    name, kw = VARIANTS[variant]
    sharded, m_sharded = _run(name, kw, "shard_map", data, params)
    serial, m_serial = _run(name, kw, "serial", data, params)
    for a, b in zip(jax.tree.leaves(sharded), jax.tree.leaves(serial), strict=True):
        np.testing.assert_allclose(np.asarray(a), np.asarray(b), rtol=TOL, atol=TOL)
    assert int(m_sharded["clients_live"]) == int(m_serial["clients_live"])
    moved = sum(float(abs(np.asarray(p) - 0).sum()) for p in jax.tree.leaves(sharded.params))
    assert moved > 0  # the rounds trained something


@pytest.mark.integration
def test_bucketed_vmap_equals_single_vmap(tiny):
    data, params = tiny
    out = []
    for buckets in (1, 3):
        algo = fl.fedprox(
            fl.logistic_loss, clients_per_round=5, local_lr=0.1, batch_size=8, local_epochs=2,
            simulation=fl.Simulation(straggler_fraction=0.4),
            execution=fl.Execution(buckets=buckets, compiler_options=fl.FAST_COMPILE),
        )  # fmt: skip
        state = algo.init(params, num_clients=data.num_clients)
        out.append(algo.apply(state, data, jax.random.key(0))[0].params)
    for a, b in zip(jax.tree.leaves(out[0]), jax.tree.leaves(out[1]), strict=True):
        np.testing.assert_allclose(np.asarray(a), np.asarray(b), rtol=TOL, atol=TOL)
