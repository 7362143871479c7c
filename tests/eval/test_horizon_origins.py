"""Calibration rollouts from thinned origins score the same paths as from every origin."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from twinjax.data import prepare, synthetic_cohort
from twinjax.eval.forecasts import horizon_sq_z
from twinjax.twins import TwinSpec, init_params, segment_rollouts


@pytest.mark.integration
def test_strided_origins_are_the_same_rollouts_as_every_origin():
    cohort = synthetic_cohort(jax.random.key(0), n_individuals=3, n_steps=80)
    arrays, _ = prepare(cohort)
    spec = TwinSpec.for_cohort(cohort, hidden=6, attention_dim=4)
    pop = init_params(jax.random.key(1), spec)
    params = jax.tree.map(lambda x: jnp.broadcast_to(x, (3, *x.shape)), pop)
    start, key = np.asarray(arrays.val).argmax(1), jax.random.key(2)
    common = dict(history=7, horizon=3, n_samples=4, shared=False)
    every = segment_rollouts(params, spec, arrays.series, start, np.arange(3), key, size=12,
                             **common)  # fmt: skip
    thin = segment_rollouts(params, spec, arrays.series, start, np.arange(3), key, size=4,
                            stride=3, **common)  # fmt: skip
    for a, b in zip(every, thin, strict=True):  # paths keyed by origin: the same draws
        np.testing.assert_allclose(np.asarray(a)[:, ::3], np.asarray(b), rtol=1e-6)
    n_val = np.asarray(arrays.val).sum(1)
    z_all, seen_all = horizon_sq_z(params, spec, arrays, arrays.val, key=key, **common)
    z_thin, seen_thin = horizon_sq_z(params, spec, arrays, arrays.val, key=key, max_origins=4,
                                     **common)  # fmt: skip
    stride = -(-int(n_val.max()) // 4)
    assert stride > 1 and (seen_thin <= seen_all).all() and 0 < seen_thin.sum() < seen_all.sum()
    # the thinned origins score a subset of the same standardized errors
    assert (z_thin <= z_all + 1e-6).all()
