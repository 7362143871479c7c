"""TwinSpec(layout="sequence"): the app's window loss through lstm_sequence equals the scan."""

import dataclasses

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from twinjax.data import Series
from twinjax.twins import TwinSpec, init_params, window_loss


def _grads(attention, *specs):
    """Loss and gradient of the app's window loss (missing values, a segment) for each spec."""
    k = jax.random.split(jax.random.key(0), 4)
    params = init_params(k[0], specs[0])
    t = 40
    mask = jax.random.uniform(k[1], (t, 2)) < 0.7  # missing values enter as in the app
    series = Series(
        jnp.where(mask, jax.random.normal(k[2], (t, 2)), 0.0), mask,
        jax.random.uniform(k[3], (t, 1)), jnp.ones(1),
    )  # fmt: skip
    segment = jnp.arange(t) < 32
    loss = lambda p, spec: window_loss(p, spec, k[0], series, segment, length=12, n_windows=5)
    return [jax.value_and_grad(loss)(params, s) for s in specs]


def _spec(attention, **kw):
    return TwinSpec(n_features=2, n_interventions=1, n_static=1, hidden=6, attention=attention,
                    attention_dim=4, **kw)  # fmt: skip


@pytest.mark.integration
@pytest.mark.parametrize("attention", [True, False])
def test_sequence_layout_equals_scan(attention):
    scan = _spec(attention)
    (v1, g1), (v2, g2) = _grads(attention, scan, dataclasses.replace(scan, layout="sequence"))
    np.testing.assert_allclose(v2, v1, rtol=1e-5)
    for a, b in zip(jax.tree.leaves(g2), jax.tree.leaves(g1), strict=True):
        np.testing.assert_allclose(a, b, atol=1e-5 * float(np.abs(b).max()) + 1e-7)


def test_sequence_layout_is_lstm_only():
    with pytest.raises(ValueError, match="written for the LSTM"):
        TwinSpec(n_features=1, n_interventions=0, n_static=0, cell="gru", layout="sequence")


@pytest.mark.integration
def test_bfloat16_residuals_same_loss_close_gradient():
    """``residuals="bfloat16"`` (the LSTM's kept carries rounded): the same loss, a gradient
    within 1% of its largest element of float32's (see lstm_sequence); refused off the
    sequence layout."""
    seq = _spec(True, layout="sequence")
    (v1, g1), (v2, g2) = _grads(True, seq, dataclasses.replace(seq, residuals="bfloat16"))
    assert v2 == v1
    scale = max(float(np.abs(g).max()) for g in jax.tree.leaves(g1))
    err = max(
        float(np.abs(a - b).max())
        for a, b in zip(jax.tree.leaves(g2), jax.tree.leaves(g1), strict=True)
    )
    assert 0 < err < 1e-2 * scale, err / scale
    with pytest.raises(ValueError, match="layout='sequence'"):
        _spec(True, residuals="bfloat16")
