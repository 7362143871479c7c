"""Training for the horizons that are forecast: the rollout loss against a hand-built reference,
its gradients, and h-step forecasts of an AR(1) cohort against the true model."""

import tempfile

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from ar1 import PHI, ar1_cohort

from twinjax.data import Series, prepare
from twinjax.train import PopulationOptions, fit_population
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


@pytest.mark.integration
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


@pytest.mark.integration
def test_rollout_loss_leaves_the_scale_head_to_the_one_step_loss():
    """The rollout term's gradient reaches the mean head and the cell (through the fed-back
    means) but not the scale head (stop_gradient), which keeps its one-step target."""
    spec = TwinSpec(n_features=2, n_interventions=1, n_static=1, hidden=5, attention=False)
    params = init_params(jax.random.key(1), spec)
    w = _window(1)
    g = jax.grad(rollout_nll)(params, spec, w, w.mask, steps=3)
    assert float(jnp.abs(g.scale.w).max()) == 0.0 and float(jnp.abs(g.scale.b).max()) == 0.0
    assert float(jnp.abs(g.mean.w).max()) > 0 and float(jnp.abs(g.cell.wx).max()) > 0


@pytest.mark.integration
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


def _mean_rollouts(params, spec, series: Series, origins, *, history: int, horizon: int):
    """Each individual's mean rollout (``forecast``, no key) from each origin ``[N, K, H, F]``."""

    def one(s, o):
        window = Series(
            *(jax.lax.dynamic_slice_in_dim(x, o - history, history) for x in s[:3]), s.static
        )
        plan = jax.lax.dynamic_slice_in_dim(s.interventions, o, horizon)
        return forecast(params, spec, window, plan)[0]

    return jax.jit(jax.vmap(jax.vmap(one, (None, 0)), (0, None)))(series, jnp.asarray(origins))


def ar1_rmse_ratio(
    rollout_steps: int, *, n=100, t=78, steps=300, hidden=8, horizon=6, seed=0, window=30
):
    """A population twin fitted on an AR(1) cohort (54 training steps each): its h-step RMSE
    over the test period's origins divided by the true model's on the same points."""
    cohort, mu = ar1_cohort(seed, n, t)
    arrays, scalers = prepare(cohort, val_fraction=0.15, test_fraction=0.15)
    spec = TwinSpec.for_cohort(cohort, hidden=hidden, attention=False)
    options = PopulationOptions(
        steps=steps, lr=1e-2, window=window, batch_windows=8, rollout_steps=rollout_steps,
        progress=False, checkpoint_every=steps,
    )  # fmt: skip
    with tempfile.TemporaryDirectory() as tmp:
        params, _ = fit_population(jax.random.key(seed + 1), spec, arrays, options, tmp)
    origins = np.arange(66, t - horizon + 1)  # the test period starts at step 66
    history = window - 1
    mean = _mean_rollouts(params, spec, arrays.series, origins, history=history, horizon=horizon)
    mean = np.asarray(mean[..., 0]) * float(scalers.values.std[0]) + float(scalers.values.mean[0])
    y = cohort.values[..., 0]
    target = origins[:, None] + np.arange(horizon)[None]  # [K, H]
    truth = y[:, target]
    last = y[:, origins - 1][..., None]
    oracle = mu[:, None, None] + PHI ** np.arange(1, horizon + 1) * (last - mu[:, None, None])
    rmse = lambda e: np.sqrt(np.mean(np.square(e), axis=(0, 1)))
    return rmse(mean - truth) / rmse(oracle - truth), rmse(mean - truth), rmse(oracle - truth)


# train.rollout_steps: 0, the default, by measurement: on AR(1) cohorts the rollout loss (k = 3,
# 6) changed the 1..6-step RMSE of a population twin by -1% to +1% (within seeds' spread) and of
# the app's personal twins by -5% to +12% (k = 6, 3); see the commit that added it
ROLLOUT_STEPS = 0
APP_TRAIN: dict = {}  # the app's defaults


@pytest.mark.integration
def test_h_step_forecasts_of_an_ar1_cohort_stay_near_the_true_model():
    """A population twin forecasts 1..6 steps within 12% of the true model's RMSE on the same
    700 points per h (100 individuals x 7 test origins; a paired RMSE ratio's sampling error is
    ~1%). The true model knows each level mu_i; the twin infers it from 29 steps of history,
    which costs it 6-9% at h = 6 (1.093 and 1.086 for cohort seeds 0 and 1), hence 12% here
    (the brief's 10% is the slow test's, for personal twins). A rollout that compounded its own
    errors fails at the long horizons: last value carried forward, for one, is 1.4x the true
    model at h = 6."""
    ratio, rmse, oracle = ar1_rmse_ratio(ROLLOUT_STEPS)
    assert np.all(ratio < 1.12), (ratio, rmse, oracle)


def app_ar1_forecasts(tmp_path, n: int = 200, **train) -> dict:
    """The app's twins (``twinjax.config.Config`` defaults, ``train`` overrides) fitted on an
    AR(1) cohort of ``n`` x 78 steps (54 train, 12 val, 12 test) and forecast 1..6 steps by
    ``bundle.forecast`` from each test origin 66..72: RMSE and 90% coverage per h, with the
    true model's and last value carried forward's RMSE on the same points."""
    from ar1 import true_forecast, truncated

    from twinjax import bundle as tb
    from twinjax import pipeline
    from twinjax.config import Config

    cohort, mu = ar1_cohort(0, n, 78)
    cfg = Config()
    cfg.train.progress = False
    for k, v in train.items():
        setattr(cfg.train, k, v)
    fit = pipeline.fit_twins(jax.random.key(1), cohort, cfg, tmp_path)
    bundle = pipeline.save_model(fit, cohort, cfg, tmp_path / "model")
    err, lvcf, oracle, inside, y = [], [], [], [], cohort.values[..., 0]
    for o in range(66, 73):
        table = tb.forecast(bundle, truncated(cohort, o), horizon=6, key=jax.random.key(o))
        get = lambda c, table=table: table[c].to_numpy().reshape(n, 6)
        truth = y[:, o : o + 6]
        err.append(get("mean") - truth)
        lvcf.append(y[:, o - 1 : o] - truth)
        oracle.append(true_forecast(cohort, mu, o, 6) - truth)
        inside.append((get("q05") <= truth) & (truth <= get("q95")))
    rmse = lambda e: np.sqrt(np.mean(np.square(np.concatenate(e)), 0))
    return {
        "rmse": rmse(err), "true": rmse(oracle), "lvcf": rmse(lvcf),
        "coverage": np.concatenate(inside).mean(0),
    }  # fmt: skip


@pytest.mark.slow
@pytest.mark.xfail(
    strict=True, reason="issue 21 item 4: not met at h = 6 (strict: a pass flags it)"
)
def test_app_forecasts_of_an_ar1_panel_are_within_10_percent_of_the_true_model(tmp_path):
    """1,400 points per h (200 subjects x 7 origins): the paired RMSE ratio's sampling error is
    ~1-2%. The app's defaults plus APP_TRAIN.

    Not met by the defaults (hence strict xfail): the RMSE ratios to the true model are above
    1.10 at h = 6 with the mean head personal (``train.personal_adapt=mean``), and above it at
    every h with all parts personal (the figures: README "What is inside", ``twinjax.train``);
    the 90% coverage holds. The test prints what it measured."""
    got = app_ar1_forecasts(tmp_path, **APP_TRAIN)
    print({k: np.round(v, 3).tolist() for k, v in got.items()})
    ratio = got["rmse"] / got["true"]
    assert np.all(ratio < 1.10), got
    assert np.all(np.abs(got["coverage"] - 0.9) < 0.04), got
