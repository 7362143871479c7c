"""Robust aggregators against numpy references; screening of NaN/inf and oversized updates."""

import jax.numpy as jnp
import numpy as np
import pytest
from fed_helpers import aggregate, updates

from twinjax import federated as fl


def test_median_and_trimmed_mean_match_numpy():
    u, acc = updates()
    got = fl.coordinate_median(jnp.asarray(u), jnp.asarray(acc))
    np.testing.assert_allclose(got, np.median(u[acc], axis=0), rtol=1e-6)
    got = fl.coordinate_trimmed_mean(jnp.asarray(u), jnp.asarray(acc), 0.2)
    s = np.sort(u[acc], axis=0)  # 7 accepted rows, floor(0.2 * 7) = 1 trimmed per side
    np.testing.assert_allclose(got, s[1:-1].mean(axis=0), rtol=1e-5)
    # the pairs give the same numbers as the functions
    w = np.ones(9, np.float32)
    np.testing.assert_allclose(aggregate(fl.trimmed_mean(0.2), u, w, acc), got, rtol=1e-6)
    np.testing.assert_allclose(aggregate(fl.median(), u, w, acc), np.median(u[acc], axis=0),
                               rtol=1e-6)  # fmt: skip


def test_multi_krum_matches_bruteforce():
    u, acc = updates()
    f, select = 1, 3
    x = u[acc]
    d = ((x[:, None] - x[None]) ** 2).sum(-1)
    scores = [np.sort(np.delete(d[i], i))[: len(x) - f - 2].sum() for i in range(len(x))]
    want = x[np.argsort(scores)[:select]].mean(axis=0)
    got = fl.multi_krum_mean(jnp.asarray(u), jnp.asarray(acc), byzantine=f, select=select)
    np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-5)
    w = np.ones(9, np.float32)
    pair = aggregate(fl.multi_krum(f, select), u, w, acc)
    np.testing.assert_allclose(pair, want, rtol=1e-4, atol=1e-5)
    krum = aggregate(fl.krum(f), u, w, acc)
    np.testing.assert_allclose(krum, x[np.argmin(scores)], rtol=1e-5)


def test_weighted_mean_ignores_rejected_rows():
    u, acc = updates()
    w = np.random.default_rng(1).uniform(1, 5, 9).astype(np.float32)
    bad = u.copy()
    bad[2] = np.nan
    masked = jnp.asarray(np.where(acc[:, None], bad, 0))
    got = fl.weighted_mean(masked, jnp.asarray(w), jnp.asarray(acc))
    np.testing.assert_allclose(got, (w[acc] @ u[acc]) / w[acc].sum(), rtol=1e-5)


@pytest.mark.parametrize("poison", [np.nan, np.inf, 1e6])
def test_screen_rejects_and_counts(poison):
    u0, _ = updates()
    u = u0.copy()
    u[[0, 4]] = poison
    w = np.ones(9, np.float32)
    w[8] = 0.0  # zero-weight (padding) rows are not counted as rejected
    out, accepted, rejected = fl.screen_updates(jnp.asarray(u), jnp.asarray(w), max_norm=100.0)
    assert int(rejected) == 2
    assert not accepted[0] and not accepted[4] and not accepted[8] and accepted[1]
    assert np.all(np.isfinite(out))
    want = np.median(u0[[1, 2, 3, 5, 6, 7]], axis=0)
    np.testing.assert_allclose(aggregate(fl.median(), out, w, accepted), want, rtol=1e-6)
    # the screen composed with the median: same aggregate, and the count in its metrics
    screened = fl.screen(fl.median(), max_norm=100.0)
    cohort = fl.RoundClients(weight=jnp.asarray(w), accepted=jnp.asarray(w > 0))
    got, _, metrics = screened.aggregate(screened.init(), jnp.asarray(u), cohort, None)
    np.testing.assert_allclose(got, want, rtol=1e-6)
    assert int(metrics["rejected"]) == 2


def test_secure_aggregation_cannot_be_screened():
    with pytest.raises(ValueError, match="cannot be screened"):
        fl.screen(fl.secure_mean())
