"""From a `Cohort` to normalized device arrays, split masks and the twin's spec."""

from __future__ import annotations

from typing import NamedTuple

import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, Bool, Float

from twinjax.config import DataConfig, ModelConfig
from twinjax.data import Cohort, segment_mask, time_split
from twinjax.data.normalize import NormStats, make_normalizer
from twinjax.twins import TwinSpec


class CohortArrays(NamedTuple):
    """Model-ready arrays (normalized), one leading row per individual."""

    values: Float[Array, "individuals time features"]
    mask: Bool[Array, "individuals time features"]
    interventions: Float[Array, "individuals time kinds"]
    static: Float[Array, "individuals covariates"]
    train: Bool[Array, "individuals time"]
    val: Bool[Array, "individuals time"]
    test: Bool[Array, "individuals time"]


class Scalers(NamedTuple):
    """Everything needed to map model units back to data units (saved with the model)."""

    values: NormStats
    interventions: Float[Array, " kinds"]
    static_mean: Float[Array, " covariates"]
    static_std: Float[Array, " covariates"]


def _intervention_scale(cohort: Cohort) -> np.ndarray:
    u = cohort.interventions.reshape(-1, cohort.interventions.shape[-1])
    positive = u > 0
    mean_pos = np.where(positive, u, 0).sum(0) / np.maximum(positive.sum(0), 1)
    return np.where(mean_pos > 0, mean_pos, 1.0).astype(np.float32)


def prepare(cohort: Cohort, cfg: DataConfig) -> tuple[CohortArrays, Scalers]:
    """Splits each individual in time, fits scalers on the training segment only, and normalizes.

    Values use the configured normalization (population or per-individual mean/std over observed
    training values); intervention amounts are divided by each kind's mean positive amount; static
    covariates are standardized over the cohort.
    """
    split = time_split(cohort.lengths, cfg.val_fraction, cfg.test_fraction)
    seg = {s: segment_mask(split, cohort.n_steps, s) for s in ("train", "val", "test")}
    norm = make_normalizer(cfg.normalization)
    stats = norm.fit(cohort.values, cohort.mask & seg["train"][..., None])
    values = norm.normalize(stats, cohort.values, mask=cohort.mask)
    u_scale = _intervention_scale(cohort)
    s_mean, s_std = cohort.static.mean(0), cohort.static.std(0)
    s_std = np.where(s_std > 1e-12, s_std, 1.0)
    arrays = CohortArrays(
        values=jnp.asarray(values, jnp.float32),
        mask=jnp.asarray(cohort.mask),
        interventions=jnp.asarray(cohort.interventions / u_scale, jnp.float32),
        static=jnp.asarray((cohort.static - s_mean) / s_std, jnp.float32),
        **{k: jnp.asarray(v) for k, v in seg.items()},
    )
    return arrays, Scalers(stats, jnp.asarray(u_scale), jnp.asarray(s_mean), jnp.asarray(s_std))


def twin_spec(cohort: Cohort, cfg: ModelConfig) -> TwinSpec:
    return TwinSpec(
        n_features=cohort.n_features,
        n_interventions=cohort.interventions.shape[-1],
        n_static=cohort.static.shape[-1],
        cell=cfg.cell,
        hidden=cfg.hidden,
        attention=cfg.attention,
        attention_dim=cfg.attention_dim,
        min_scale=cfg.min_scale,
    )
