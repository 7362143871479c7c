"""Training for the horizons that are forecast: the rollout loss against a hand-built reference,
its gradients, and h-step forecasts of an AR(1) cohort against the true model."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from twinjax.data import Series
from twinjax.twins import (
    TwinSpec,
    apply,
    forecast,
    gaussian_nll,
    init_params,
    rollout_nll,
    window_loss,
)


def _window(seed=0, length=10):
    rng = np.random.default_rng(seed)
    values = rng.normal(size=(length, 2)).astype(np.float32)
    mask = rng.random((length, 2)) < 0.8
    plan = rng.random((length, 1)).astype(np.float32)
    return Series(np.where(mask, values, 0), mask, plan, np.zeros(1, np.float32))


def test_rollout_nll_is_the_nll_of_a_mean_rollout_over_the_last_steps():
    """Reference: ``forecast`` from the first L - k steps under the window's interventions,
    scored on the observed last k values (1e-6)."""
    spec = TwinSpec(n_features=2, n_interventions=1, n_static=1, hidden=5, attention_dim=3)
    params = init_params(jax.random.key(0), spec)
    w, k = _window(), 4
    got = rollout_nll(params, spec, w, w.mask, steps=k)
    head = Series(*(x[:-k] for x in w[:3]), w.static)
    mean, scale = forecast(params, spec, head, w.interventions[-k:])
    m = w.mask[-k:]
    ref = np.where(m, gaussian_nll(mean, scale, w.values[-k:]), 0).sum() / m.sum()
    np.testing.assert_allclose(got, ref, rtol=1e-6)
    # the fed-back means matter: the teacher-forced one-step NLL of those steps differs
    tf_mean, tf_scale = apply(params, spec, w)
    tf = gaussian_nll(tf_mean[-k - 1 : -1], tf_scale[-k - 1 : -1], w.values[-k:])
    assert abs(float(np.where(m, tf, 0).sum() / m.sum()) - float(got)) > 1e-3


def test_rollout_loss_leaves_the_scale_head_to_the_one_step_loss():
    """The rollout term's gradient reaches the mean head and the cell (through the fed-back
    means) but not the scale head (stop_gradient), which keeps its one-step target."""
    spec = TwinSpec(n_features=2, n_interventions=1, n_static=1, hidden=5, attention=False)
    params = init_params(jax.random.key(1), spec)
    w = _window(1)
    g = jax.grad(rollout_nll)(params, spec, w, w.mask, steps=3)
    assert float(jnp.abs(g.scale.w).max()) == 0.0 and float(jnp.abs(g.scale.b).max()) == 0.0
    assert float(jnp.abs(g.mean.w).max()) > 0 and float(jnp.abs(g.cell.wx).max()) > 0


def test_window_loss_adds_the_rollout_term_and_is_unchanged_without_it():
    spec = TwinSpec(n_features=2, n_interventions=1, n_static=1, hidden=5, attention_dim=3)
    params = init_params(jax.random.key(2), spec)
    rng = np.random.default_rng(3)
    t = 30
    series = Series(
        rng.normal(size=(t, 2)).astype(np.float32), np.ones((t, 2), bool),
        np.zeros((t, 1), np.float32), np.zeros(1, np.float32),
    )  # fmt: skip
    segment = np.arange(t) < 25
    args = (params, spec, jax.random.key(4), series, segment)
    plain = window_loss(*args, length=8, n_windows=3)
    both = window_loss(*args, length=8, n_windows=3, rollout_steps=3)
    assert float(both) > float(plain) + 0.1  # the rollout NLL (> 0.9 per value) is added
    with pytest.raises(ValueError, match="rollout_steps"):
        window_loss(*args, length=8, n_windows=3, rollout_steps=8)
