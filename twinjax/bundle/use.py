"""Saved twins at work: forecast (with intervals, in data units), personalize a new individual,
update an individual's twin with newly arrived data. None of them refits the cohort."""

import dataclasses
import logging
import tempfile
from collections.abc import Sequence
from functools import partial

import jax
import jax.numpy as jnp
import numpy as np
import pandas as pd
from jaxtyping import PRNGKeyArray

from twinjax.bundle.align import align
from twinjax.bundle.store import TwinBundle
from twinjax.data import Cohort, CohortArrays, NormStats, Series
from twinjax.eval import Forecasts, segment_forecasts
from twinjax.train import fit_personal
from twinjax.twins import Params, sample_paths

log = logging.getLogger(__name__)


def _rows_params(bundle: TwinBundle, rows: list[int | None]) -> Params:
    """Each subject's personal twin, or the population twin for a subject the bundle lacks."""
    known = np.array([r is not None for r in rows])
    idx = jnp.asarray([r if r is not None else 0 for r in rows])

    def pick(per, pop):
        k = known.reshape((-1,) + (1,) * pop.ndim)
        return jnp.where(k, jnp.asarray(per)[idx], jnp.asarray(pop)[None])

    return jax.tree.map(pick, bundle.personal, bundle.population)


def horizon_factors(bundle: TwinBundle, rows: list[int | None], horizon: int) -> np.ndarray:
    """Interval calibration ``[N, horizon, F]``: step h of a forecast scaled by its subject's
    factor for horizon h (a known subject's own, else the population twin's), the last
    calibrated horizon's beyond it. A bundle saved before per-horizon calibration has one
    factor (fitted one step ahead): it is used at every horizon, with a warning."""
    cal = bundle.calibration
    if "personal_h" in cal and "population_h" in cal:
        per, pop = np.asarray(cal["personal_h"]), np.asarray(cal["population_h"])
    else:
        if horizon > 1:
            log.warning(
                "these twins were saved without per-horizon calibration: their one-step factor "
                "scales the intervals at every horizon (multi-step intervals may be too narrow); "
                "save them again with this twinjax for calibrated %d-step intervals",
                horizon,
            )
        per, pop = np.asarray(cal["personal"])[:, None], np.asarray(cal["population"])[None]
    factors = np.stack([per[r] if r is not None else pop for r in rows])
    return factors[:, np.minimum(np.arange(horizon), factors.shape[1] - 1)]


def _last_window(series: Series, lengths: np.ndarray, history: int) -> Series:
    """Each individual's last ``history`` steps before its length (missing where it is shorter)."""
    pad = lambda x: jnp.concatenate([jnp.zeros((x.shape[0], history) + x.shape[2:], x.dtype), x], 1)
    take = lambda x, end: jax.lax.dynamic_slice_in_dim(x, end, history)
    ends = jnp.asarray(lengths)
    return Series(*(jax.vmap(take)(pad(x), ends) for x in series[:3]), series.static)


def forecast(
    bundle: TwinBundle,
    cohort: Cohort,
    *,
    horizon: int,
    key: PRNGKeyArray,
    plan: np.ndarray | None = None,
    n_samples: int = 200,
    levels: Sequence[float] = (0.05, 0.25, 0.5, 0.75, 0.95),
) -> pd.DataFrame:
    """Forecasts each individual of ``cohort`` from the end of its data, ``horizon`` steps on.

    A subject the twins know uses its personal twin, another the population twin (personalize
    it first for a twin of its own). Trajectories are sampled from the twin's predictive
    Gaussians step by step (the spread accumulates over the horizon), then calibrated: at step h
    each draw moves away from the paths' mixture mean ``m_h`` by its subject's factor ``c_h``
    (``m_h + c_h (draw - m_h)``, :func:`horizon_factors`), fitted on the run's validation
    rollouts. Step 1's draws are the one-step Gaussian, so its intervals are those of
    :func:`one_step`.

    Args:
      bundle: saved twins (:func:`twinjax.load`).
      cohort: the recent data in data units (``read_cohort`` of a new file, say).
      horizon: grid steps to forecast; key: draws the trajectories.
      plan: interventions planned over the horizon ``[N, horizon, kinds]`` in data units, kinds
        in ``bundle.intervention_kinds`` order (None: nothing given).
      n_samples: trajectories per individual; levels: the quantiles reported.

    Returns:
      One row per subject, step (1 = the grid step after the data), variable: ``subject_id``,
      ``horizon`` (that step), ``time``, ``variable``, ``mean`` and a column ``q05``, ``q25``,
      ... per level, in data units (the columns of every ``forecasts.csv``).
    """
    series, stats, rows = align(bundle, cohort)
    n = cohort.n_individuals
    kinds = series.interventions.shape[-1]
    plan = np.zeros((n, horizon, kinds), np.float32) if plan is None else np.asarray(plan)
    if plan.shape != (n, horizon, kinds):
        raise ValueError(f"plan has shape {plan.shape}; expected {(n, horizon, kinds)}")
    plan = jnp.asarray(plan / np.asarray(bundle.scalers.interventions), jnp.float32)
    window = _last_window(series, cohort.lengths, bundle.history)
    center, draws = _sample(_rows_params(bundle, rows), bundle.spec, window, plan, key, n_samples)
    factors = horizon_factors(bundle, rows, horizon)[:, None]  # [N, 1, H, F]
    draws = np.asarray(center)[:, None] + factors * (
        np.asarray(draws) - np.asarray(center)[:, None]
    )
    draws = (
        np.asarray(draws) * np.asarray(stats.std)[:, None, None]
        + np.asarray(stats.mean)[:, None, None]
    )  # [N, S, H, F] in data units
    return _table(bundle, cohort, draws, levels)


@partial(jax.jit, static_argnames=("spec", "n_samples"))
def _sample(params, spec, window, plan, key, n_samples):
    """Each individual's paths' mixture mean ``[N, H, F]`` and ``n_samples`` draws from it
    ``[N, S, H, F]`` (normalized units). Jitted once at module level: a ``jax.jit`` of a closure
    made inside each call compiled the sampler again at every forecast of the same shapes."""

    def one(p, w, u, k):
        k_paths, k_draw = jax.random.split(k)
        means, scales = sample_paths(p, spec, w, u, key=k_paths, n_samples=n_samples)
        draws = means + scales * jax.random.normal(k_draw, means.shape)
        return jnp.mean(means, 0), draws

    keys = jax.random.split(key, window.values.shape[0])
    return jax.vmap(one)(params, window, plan, keys)


def _table(bundle, cohort, draws, levels) -> pd.DataFrame:
    n, _, horizon, f = draws.shape
    q = np.quantile(draws, levels, axis=1)  # [L, N, H, F]
    ids = cohort.subject_ids or tuple(range(n))
    t0 = np.zeros(n) if cohort.t0 is None else np.asarray(cohort.t0, np.float64)
    step = np.arange(1, horizon + 1)
    frame = {
        "subject_id": np.repeat(np.asarray(ids, dtype=object), horizon * f),
        "horizon": np.tile(np.repeat(step, f), n),
        "time": (t0[:, None] + (cohort.lengths[:, None] + step[None] - 1) * cohort.step)
        .repeat(f)
        .ravel(),
        "variable": np.tile(np.asarray(bundle.variables, dtype=object), n * horizon),
        "mean": draws.mean(1).ravel(),
    }
    for level, values in zip(levels, q, strict=True):
        frame[f"q{round(level * 100):02d}"] = values.ravel()
    return pd.DataFrame(frame)


def one_step(bundle: TwinBundle, cohort: Cohort, segment) -> Forecasts:
    """Recalibrated one-step forecasts of ``segment`` (``[N, T]`` steps) in data units, each from
    the ``bundle.history`` steps before it (as the run evaluated its twins), scaled by the
    horizon-1 factors (as :func:`forecast`'s first step); variables in the bundle's order (the
    cohort must have them all)."""
    series, stats, rows = align(bundle, cohort)
    cols = [list(cohort.variables).index(v) for v in bundle.variables]
    ordered = dataclasses.replace(
        cohort, values=cohort.values[..., cols], mask=cohort.mask[..., cols], truth=None
    )
    arrays = CohortArrays(series, *(jnp.zeros(series.mask.shape[:2], bool),) * 2, segment)
    return segment_forecasts(
        _rows_params(bundle, rows), bundle.spec, arrays, stats, ordered, segment,
        history=bundle.history, shared=False, scale_factor=horizon_factors(bundle, rows, 1),
    )  # fmt: skip


def _history_arrays(series: Series, lengths, *, val_fraction: float, window: int) -> CohortArrays:
    """All of each individual's data for training but its last ``val_fraction`` (validation)."""
    t = series.values.shape[1]
    if t < window:  # windows must fit in the array; the padding is never observed
        grow = lambda x: jnp.concatenate(
            [x, jnp.zeros((x.shape[0], window - t) + x.shape[2:], x.dtype)], 1
        )
        series = Series(*(grow(x) for x in series[:3]), series.static)
    steps = np.arange(series.values.shape[1])[None]
    lengths = np.asarray(lengths)[:, None]
    train_end = np.maximum(np.floor(lengths * (1 - val_fraction)), 2)
    train, val = steps < train_end, (steps >= train_end) & (steps < lengths)
    return CohortArrays(series, jnp.asarray(train), jnp.asarray(val), jnp.zeros_like(train))


def _fine_tune(bundle, cohort, *, key, steps, val_fraction, start):
    series, stats, rows = align(bundle, cohort)
    options = bundle.options._replace(
        steps=steps or bundle.options.steps, chunk_size=0, progress=False,
        checkpoint_every=steps or bundle.options.steps,
    )  # fmt: skip
    arrays = _history_arrays(
        series, cohort.lengths, val_fraction=val_fraction, window=options.window
    )
    begin = (
        None if start is None else jax.tree.map(lambda x: jnp.asarray(x)[start], bundle.personal)
    )
    with tempfile.TemporaryDirectory() as tmp:
        params, _ = fit_personal(
            key, bundle.spec, bundle.population, arrays, options, tmp, start=begin
        )
    return params, stats, rows


def personalize(
    bundle: TwinBundle,
    cohort: Cohort,
    *,
    key: PRNGKeyArray,
    steps: int | None = None,
    val_fraction: float = 0.15,
) -> TwinBundle:
    """Twins of their own for the new individuals of ``cohort``, from their data alone.

    Each starts from the population twin and is fine-tuned as in the run (MAP under the Gaussian
    prior centred on the population twin, ``bundle.options``); the cohort is not refitted.

    Args:
      bundle: saved twins; cohort: the new individuals' data (subject ids the bundle lacks).
      key: draws the training windows; steps: fine-tuning steps (default: the run's).
      val_fraction: the end of each history kept out of training (used for selection).

    Returns:
      The bundle with the new subjects appended (their calibration factors: the cohort's
      medians).
    """
    known = [s for s in cohort.subject_ids if bundle.index(s) is not None]
    if known:
        raise ValueError(f"subjects {known[:5]} already have twins: update() takes in new data")
    params, stats, _ = _fine_tune(
        bundle, cohort, key=key, steps=steps, val_fraction=val_fraction, start=None
    )
    grow = lambda per: np.concatenate(
        [per, np.repeat(np.median(per, 0)[None], cohort.n_individuals, 0)]
    )
    calibration = {
        k: grow(np.asarray(v)) if k.startswith("personal") else v
        for k, v in bundle.calibration.items()
    }
    scalers = bundle.scalers
    if bundle.normalization == "individual":
        cat = lambda a, b: jnp.concatenate([jnp.asarray(a), jnp.asarray(b)])
        scalers = scalers._replace(values=NormStats(*map(cat, scalers.values, stats)))
    t0 = np.zeros(cohort.n_individuals) if cohort.t0 is None else np.asarray(cohort.t0)
    return bundle._replace(
        personal=jax.tree.map(lambda a, b: jnp.concatenate([a, b]), bundle.personal, params),
        subject_ids=bundle.subject_ids + tuple(cohort.subject_ids),
        t0=np.concatenate([np.asarray(bundle.t0, np.float64), t0]),
        calibration=calibration,
        scalers=scalers,
    )


def update(
    bundle: TwinBundle,
    cohort: Cohort,
    *,
    key: PRNGKeyArray,
    steps: int,
    val_fraction: float = 0.15,
) -> TwinBundle:
    """Known individuals' twins take in newly arrived data; the others are untouched.

    ``cohort`` holds these individuals' data so far (old and new). Each twin is warm-started
    from its current parameters and takes ``steps`` MAP steps of the personalization objective
    (prior centred on the population twin) on all of it: an online update that costs a fraction
    of a refit.

    Returns:
      The bundle with these subjects' personal twins replaced.
    """
    rows = [bundle.index(s) for s in cohort.subject_ids]
    if any(r is None for r in rows):
        missing = [s for s, r in zip(cohort.subject_ids, rows, strict=True) if r is None]
        raise ValueError(f"subjects {missing[:5]} have no twin yet: personalize() them first")
    params, _, _ = _fine_tune(
        bundle, cohort, key=key, steps=steps, val_fraction=val_fraction, start=np.asarray(rows)
    )
    idx = jnp.asarray(rows)
    personal = jax.tree.map(lambda a, b: jnp.asarray(a).at[idx].set(b), bundle.personal, params)
    return bundle._replace(personal=personal)
