"""Per-step (FedNova-style) aggregation undoes unequal local work."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from fed_helpers import aggregate

from twinjax import federated as fl

STEPS = np.array([100, 300, 5000, 120, 1600, 150, 90, 800, 200], np.int32)
# batch size 1 and one epoch: the assigned steps are the sample counts
WORK = dict(count=jnp.asarray(STEPS), epochs=jnp.ones(9, jnp.int32))
INNER = {"mean": fl.mean(), "median": fl.median(), "trimmed_mean": fl.trimmed_mean(0.2)}


@pytest.mark.parametrize("name", ["mean", "median", "trimmed_mean"])
def test_aggregate_per_step_undoes_unequal_local_work(name):
    # client i ran steps[i] local steps of the same per-step update v; row 2 sends NaN
    rng = np.random.default_rng(1)
    steps = STEPS.astype(np.float32)
    w = rng.uniform(1, 3, 9).astype(np.float32)
    v = rng.normal(size=7).astype(np.float32)
    u = steps[:, None] * v
    u[2] = np.nan
    out, accepted, _ = fl.screen_updates(jnp.asarray(u), jnp.asarray(w))
    ok = np.arange(9) != 2
    assert np.array_equal(accepted, ok)
    got = aggregate(fl.per_step(INNER[name], batch_size=1), out, w, accepted, **WORK)
    mean_steps = (w[ok] * steps[ok]).sum() / w[ok].sum()  # the rejected row's 5000 is out
    np.testing.assert_allclose(got, mean_steps * v, rtol=1e-5)
    # of the raw updates, the median / trimmed mean scale v by a typical client's step count
    s = np.sort(steps[ok])  # 8 accepted: floor(0.2 * 8) = 1 trimmed per side
    typical = {"mean": mean_steps, "median": np.median(s), "trimmed_mean": s[1:-1].mean()}
    raw = aggregate(INNER[name], out, w, accepted)
    np.testing.assert_allclose(raw, typical[name] * v, rtol=1e-5)


def test_bucketing_per_step_keeps_the_step_multiplier():
    # every client ran steps[i] steps of the same v: bucket means of per-step updates are v
    v = np.random.default_rng(2).normal(size=7).astype(np.float32)
    acc = np.array([1, 1, 0, 1, 1, 1, 0, 1, 1], bool)
    steps = STEPS.astype(np.float32)
    u = np.where(acc[:, None], steps[:, None] * v, np.nan).astype(np.float32)
    w = np.ones(9, np.float32)
    agg = fl.per_step(fl.bucketed(fl.median(), 3), batch_size=1)
    got = aggregate(agg, u, w, acc, key=jax.random.key(0), **WORK)
    np.testing.assert_allclose(got, steps[acc].mean() * v, rtol=1e-5)
