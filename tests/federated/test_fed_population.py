"""Population-scale federated rounds: lockstep local SGD vs the serial loop, its padding count,
the DP accounting of adaptive clipping (the dp_population experiment's tiny run:
tests/experiments/test_experiments.py)."""

import itertools
import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax.flatten_util import ravel_pytree

from twinjax import federated as fl
from twinjax.federated import privacy
from twinjax.federated.execution import bucket_edges, group_edges
from twinjax.federated.size_classes import mean_sorted_steps, optimal_edges


def _lockstep_reference(steps: np.ndarray, edges, devices: int) -> int:
    """Brute force: every client of a group runs as many steps as the group's busiest."""
    total = 0
    for chunk in np.split(steps, devices):
        for lo, hi in itertools.pairwise(edges):
            total += sum(max(chunk[lo:hi]) for _ in range(lo, hi))
    return total


@pytest.mark.parametrize("devices", [1, 2])
@pytest.mark.parametrize("buckets", [1, 2, 3, 8, (0, 1, 4, 8)])
def test_lockstep_steps_counts_each_group_to_its_busiest_client(buckets, devices):
    steps = np.array([9, 5, 5, 3, 2, 0, 0, 0])
    if not isinstance(buckets, int) and devices == 2:
        buckets = (0, 1, 3, 4)
    edges = group_edges(len(steps) // devices, buckets)
    got = fl.lockstep_steps(jnp.asarray(steps), buckets, devices)
    assert int(got) == _lockstep_reference(steps, edges, devices)
    assert fl.lockstep_steps(jnp.asarray(steps), 1) == 8 * 9  # one vmap: padded to the largest
    with pytest.raises(ValueError, match="from 0 to 8"):
        group_edges(8, (0, 3, 7))


def test_size_class_edges_are_optimal_and_beat_geometric_widths():
    rng = np.random.default_rng(0)
    mean = np.sort(rng.lognormal(1.0, 1.0, 9))[::-1]
    cost = lambda e: sum((hi - lo) * mean[lo] for lo, hi in itertools.pairwise(e))
    for groups in (1, 2, 3, 4):
        edges = optimal_edges(mean, groups)
        best = min(
            cost((0, *inner, 9)) for inner in itertools.combinations(range(1, 9), groups - 1)
        )  # every way to cut 9 slots into that many groups
        assert len(edges) == groups + 1 and cost(edges) == pytest.approx(best)
    # a heavy-tailed population (Synthetic sizes): fewer padded steps than geometric widths
    train, _ = fl.synthetic_alpha_beta(0, num_clients=400, dim=2, num_classes=2, max_samples=500)
    kw = dict(epochs=1, batch_size=10, sampling="poisson")
    mean_steps = mean_sorted_steps(train.count, 40, **kw, draws=64, seed=1)
    sized = fl.size_class_edges(train.count, 40, 4, **kw)
    assert cost_of(mean_steps, sized) < 0.9 * cost_of(mean_steps, bucket_edges(len(mean_steps), 4))


def cost_of(mean_steps, edges) -> float:
    return float(sum((hi - lo) * mean_steps[lo] for lo, hi in itertools.pairwise(edges)))


@pytest.mark.integration
def test_size_class_lockstep_local_sgd_equals_per_client_loop():
    """Local SGD of clients of unequal sizes (sorted by decreasing size, as a round lays them
    out; two of them with no work) in vmapped size classes equals a loop calling one client
    at a time. Tolerance 1e-5: the same float32 operations per client, the vmapped matmuls may
    sum in another order (observed differences ~1e-7)."""
    train, _ = fl.synthetic_alpha_beta(3, num_clients=10, dim=3, num_classes=2, max_samples=200,
                                       spread=0.5)  # fmt: skip
    count = np.asarray(train.count)
    ids = np.argsort(-count, kind="stable")
    epochs = np.where(np.arange(10) % 4 == 3, 0, 2)  # clients 3 and 7: dropped out
    rows = dict(offset=train.offset[ids], count=train.count[ids], epochs=jnp.asarray(epochs),
                id=jnp.asarray(ids), key=jax.random.split(jax.random.key(5), 10))  # fmt: skip
    client = fl.sgd_update(fl.logistic_loss, learning_rate=0.1, batch_size=16, epochs=2)
    shared = dict(params=fl.logistic_init(3, 2), samples=train.samples)

    def one(shared, row):
        task = fl.ClientTask(shared["samples"], row["offset"], row["count"], row["epochs"],
                             row["id"])  # fmt: skip
        out = client.update(shared["params"], {}, {}, task, row["key"])
        return ravel_pytree(out.delta)[0], out.steps

    edges = fl.size_class_edges(count, 10, 2, epochs=2, batch_size=16)
    assert len(edges) == 3
    fast = dict(compiler_options=fl.FAST_COMPILE)
    grouped = jax.jit(lambda s, r: fl.map_clients(one, s, r, backend="vmap", mesh=None,
                                                  buckets=edges), **fast)(shared, rows)  # fmt: skip
    single = jax.jit(one, **fast)
    for i in range(10):
        delta, steps = single(shared, jax.tree.map(lambda a, i=i: a[i], rows))
        np.testing.assert_allclose(grouped[0][i], delta, rtol=1e-5, atol=1e-5)
        assert int(grouped[1][i]) == int(steps) == epochs[i] * -(-count[ids[i]] // 16)
    assert np.abs(np.asarray(grouped[0][epochs > 0])).max() > 1e-3  # clients moved
    steps = np.asarray(grouped[1])
    assert int(fl.lockstep_steps(grouped[1], edges)) == _lockstep_reference(steps, edges, 1)


def test_clip_count_has_sensitivity_one_half():
    """The noised count sums bits shifted to +-1/2 over the live clients only."""
    cfg = fl.DPConfig(adaptive=True, quantile_noise=1e-9, clip_learning_rate=0.2)
    unclipped = jnp.asarray([True, True, True, False, True])
    live = jnp.asarray([True, True, True, True, False])  # the last one dropped out
    c = privacy.adapt_clip_norm(jnp.float32(1.0), unclipped, live, 4.0, jax.random.key(0), cfg)
    # 3 of the 4 live clients unclipped: fraction (3 - 4/2) / 4 + 1/2 = 0.75
    np.testing.assert_allclose(c, math.exp(-0.2 * (0.75 - 0.5)), rtol=1e-6)
