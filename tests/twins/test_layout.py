"""TwinSpec(layout="sequence"): the app's window loss through lstm_sequence equals the scan."""

import dataclasses

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from twinjax.data import Series
from twinjax.twins import TwinSpec, init_params, window_loss


@pytest.mark.parametrize("attention", [True, False])
def test_sequence_layout_equals_scan(attention):
    scan = TwinSpec(n_features=2, n_interventions=1, n_static=1, hidden=6, attention=attention,
                    attention_dim=4)  # fmt: skip
    seq = dataclasses.replace(scan, layout="sequence")
    k = jax.random.split(jax.random.key(0), 4)
    params = init_params(k[0], scan)
    t = 40
    mask = jax.random.uniform(k[1], (t, 2)) < 0.7  # missing values enter as in the app
    series = Series(
        jnp.where(mask, jax.random.normal(k[2], (t, 2)), 0.0), mask,
        jax.random.uniform(k[3], (t, 1)), jnp.ones(1),
    )  # fmt: skip
    segment = jnp.arange(t) < 32
    loss = lambda p, spec: window_loss(p, spec, k[0], series, segment, length=12, n_windows=5)
    (v1, g1), (v2, g2) = (jax.value_and_grad(loss)(params, s) for s in (scan, seq))
    np.testing.assert_allclose(v2, v1, rtol=1e-5)
    for a, b in zip(jax.tree.leaves(g2), jax.tree.leaves(g1), strict=True):
        np.testing.assert_allclose(a, b, atol=1e-5 * float(np.abs(b).max()) + 1e-7)


def test_sequence_layout_is_lstm_only():
    with pytest.raises(ValueError, match="written for the LSTM"):
        TwinSpec(n_features=1, n_interventions=0, n_static=0, cell="gru", layout="sequence")
