"""The core twin pipeline as library calls: load -> prepare -> population -> personal -> evaluate."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import NamedTuple

import jax
import numpy as np
import orbax.checkpoint as ocp

from twinjax.config import Config, DataConfig
from twinjax.data import Cohort, synthetic_cohort
from twinjax.data.io import read_cohort
from twinjax.data.normalize import denormalize, denormalize_scale
from twinjax.eval import cohort_predictions, gaussian_metrics, summarize
from twinjax.train import CohortArrays, Scalers, fit_personal, fit_population, prepare, twin_spec
from twinjax.twins import TwinSpec

log = logging.getLogger(__name__)


def load_cohort(key: jax.Array, cfg: DataConfig) -> Cohort:
    """The configured cohort: the synthetic one, or a user's long-format files."""
    if cfg.source == "synthetic":
        return synthetic_cohort(
            key,
            n_individuals=cfg.n_individuals,
            n_steps=cfg.n_steps,
            obs_prob=cfg.obs_prob,
            dropout_prob=cfg.dropout_prob,
            noise=cfg.noise,
        )
    if cfg.source == "files":
        if not cfg.observations:
            raise ValueError("data=files needs data.observations=PATH (CSV or Parquet)")
        cohort = read_cohort(
            cfg.observations,
            cfg.interventions,
            cfg.static,
            step=cfg.step,
            subject_col=cfg.subject_col,
            time_col=cfg.time_col,
            variable_col=cfg.variable_col,
            value_col=cfg.value_col,
            kind_col=cfg.kind_col,
            amount_col=cfg.amount_col,
            drop_bad_rows=cfg.drop_bad_rows,
        )
        return cohort
    raise ValueError(f"unknown data.source {cfg.source!r}: use synthetic or files")


def target_index(cohort: Cohort, cfg: DataConfig) -> int:
    if cfg.target is None:
        return 0
    if cfg.target not in cohort.variables:
        raise ValueError(
            f"data.target={cfg.target!r} is not one of the variables {cohort.variables}"
        )
    return cohort.variables.index(cfg.target)


class TwinFit(NamedTuple):
    spec: TwinSpec
    scalers: Scalers
    arrays: CohortArrays
    population: dict
    personal: dict  # leading axis: individuals
    population_losses: np.ndarray
    calibration: dict  # predictive-scale factors: "population" [F], "personal" [N, F]


def fit_twins(key: jax.Array, cohort: Cohort, cfg: Config, out_dir: Path) -> TwinFit:
    """Population twin, then personal twins; checkpoints under ``out_dir/checkpoints`` (resumable)."""
    arrays, scalers = prepare(cohort, cfg.data)
    spec = twin_spec(cohort, cfg.model)
    k_pop, k_personal = jax.random.split(key)
    ckpt = Path(out_dir) / "checkpoints"
    pop, losses = fit_population(k_pop, spec, arrays, cfg.data, cfg.train, ckpt / "population")
    personal, _ = fit_personal(
        k_personal, spec, pop, arrays, cfg.data, cfg.train, ckpt / "personal"
    )
    history = cfg.data.context + cfg.data.horizon - 1
    calibration = calibrate_scales(
        spec, arrays, pop, personal, history=history, strength=cfg.train.calibration_strength
    )
    return TwinFit(spec, scalers, arrays, pop, personal, losses, calibration)


def _val_sq_z(params, spec, arrays, *, history, shared):
    mean, scale, t, inside = cohort_predictions(
        params, spec, arrays, arrays.val, history=history, shared=shared
    )
    rows = np.arange(arrays.values.shape[0])[:, None]
    y, m = (
        np.asarray(arrays.values)[rows, t],
        np.asarray(arrays.mask)[rows, t] & np.asarray(inside)[..., None],
    )
    z2 = np.where(m, ((y - np.asarray(mean)) / np.asarray(scale)) ** 2, 0.0)
    return z2.sum(1), m.sum(1)  # [N, F] each


def calibrate_scales(spec, arrays, pop, personal, *, history: int, strength: float) -> dict:
    """Variance recalibration on the validation segment (never on test data).

    A Gaussian forecaster whose scale is off by a factor s has E[z^2] = s^2 for z = (y - mean)/scale.
    The population twin gets one factor per feature, pooled over the cohort; each personal twin
    gets its own, shrunk toward the cohort's pooled personal factor with ``strength``
    pseudo-observations (s_i^2 = (sum z^2 + strength s^2) / (n_i + strength)).
    """
    z2_pop, n = _val_sq_z(pop, spec, arrays, history=history, shared=True)
    z2_per, _ = _val_sq_z(personal, spec, arrays, history=history, shared=False)
    pooled = lambda z2: z2.sum(0) / np.maximum(n.sum(0), 1)
    s2_per = (z2_per + strength * pooled(z2_per)) / (n + strength)
    return {"population": np.sqrt(pooled(z2_pop)), "personal": np.sqrt(s2_per)}


def save_model(fit: TwinFit, directory: Path) -> None:
    """Parameters with their normalization statistics, restorable with orbax."""
    tree = {
        "population": fit.population,
        "personal": fit.personal,
        "scalers": fit.scalers._asdict(),
    }
    tree["scalers"]["values"] = fit.scalers.values._asdict()
    with ocp.StandardCheckpointer() as ckptr:
        ckptr.save(Path(directory).absolute(), tree, force=True)


class Forecasts(NamedTuple):
    """One-step forecasts of one segment in data units, [N, K, F]; ``t``/``inside`` [N, K]."""

    mean: np.ndarray
    scale: np.ndarray
    y: np.ndarray
    observed: np.ndarray
    t: np.ndarray
    inside: np.ndarray


def forecasts(fit: TwinFit, cohort: Cohort, segment, *, personal: bool, history: int) -> Forecasts:
    params = fit.personal if personal else fit.population
    mean, scale, t, inside = cohort_predictions(
        params, fit.spec, fit.arrays, segment, history=history, shared=not personal
    )
    stats = fit.scalers.values
    rows = np.arange(cohort.n_individuals)[:, None]
    t, inside = np.asarray(t), np.asarray(inside)
    factor = fit.calibration["personal"][:, None, :] if personal else fit.calibration["population"]
    return Forecasts(
        mean=np.asarray(denormalize(stats, mean)),
        scale=np.asarray(denormalize_scale(stats, scale)) * factor,
        y=cohort.values[rows, t],
        observed=cohort.mask[rows, t] & inside[..., None],
        t=t,
        inside=inside,
    )


def evaluate_twins(fit: TwinFit, cohort: Cohort, cfg: DataConfig) -> dict:
    """Per-individual test metrics on the target stream, population vs personalized twins."""
    f = target_index(cohort, cfg)
    history = cfg.context + cfg.horizon - 1
    out = {}
    for name, personal in (("population", False), ("personalized", True)):
        fc = forecasts(fit, cohort, fit.arrays.test, personal=personal, history=history)
        out[name] = gaussian_metrics(
            fc.mean[..., f], fc.scale[..., f], fc.y[..., f], fc.observed[..., f]
        )
    return out


def summary_metrics(per_individual: dict) -> dict:
    """Flat, self-explanatory metrics for metrics.json."""
    summary = {name: summarize(m) for name, m in per_individual.items()}
    pop, per = summary["population"], summary["personalized"]
    return {
        "population": pop,
        "personalized": per,
        "rmse_ratio_personalized_over_population": per["rmse_mean"] / pop["rmse_mean"],
        "fraction_individuals_improved": float(
            np.mean(per_individual["personalized"]["rmse"] < per_individual["population"]["rmse"])
        ),
    }
