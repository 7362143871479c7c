"""Weakly informative default priors on the data's own scale, and a prior-predictive check.

Growth models (coefficients ``c_k`` of ``t^k``): with ``m`` and ``s`` the mean and SD of the
observed outcome and ``s_t`` the SD of the observation times (after any centring), the prior is
``c_0 ~ Normal(m, 2.5 s)``, ``c_k ~ Normal(0, 2.5 s / s_t^k)``, random-effect SDs
``HalfNormal(s / s_t^k)`` and residual SDs ``HalfNormal(s)``: the standardized model's
``Normal(0, 2.5)`` / ``HalfNormal(1)`` priors, reported on the original scale. The model samples
in standardized units (``HierarchicalSpec(standardized=True)``), so NUTS sees unit scales whether
the outcome is near 0.1 or 1,000.

PK models (log parameters): centred on rough data-based values (``Ke`` from the span of
observations after the first dose, ``V`` (or ``V1``) from dose over peak concentration, ``Ka``
from the time of the peak; peripheral volumes 2 and 4 times ``V1``, intercompartmental clearances
near ``Cl``) with SD 2 (a factor of 7 either way); random-effect SDs ``HalfNormal(1)``.

The prior-predictive check draws cohorts from the prior and warns (:class:`PriorWarning`) when the
observations sit in its far tails: more than ``max_tail_fraction`` of them outside the central
99% of their prior predictive, or the cohort mean outside the central 99% of its own.
"""

import warnings
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from numpyro.infer import Predictive

from twinjax.bayes.data import TwinData
from twinjax.bayes.doses import ORAL
from twinjax.bayes.hierarchical import HierarchicalSpec, hierarchical_model
from twinjax.bayes.models import MeanModel
from twinjax.bayes.residual import LOG_SCALE, ErrorModel, to_model_scale


class PriorWarning(UserWarning):
    """The priors put the data in their far tails."""


class Priors(NamedTuple):
    prior_loc: tuple[float, ...]  # per parameter
    prior_scale: tuple[float, ...]  # per parameter
    omega_scale: tuple[float, ...]  # per parameter (pick the random ones)
    sigma_scale: float


def _observed(data: TwinData) -> tuple[np.ndarray, np.ndarray]:
    m = np.asarray(data.mask, bool)
    return np.asarray(data.times)[m], np.asarray(data.values)[m]


def growth_priors(model: MeanModel, data: TwinData, error_model: ErrorModel) -> Priors:
    t, y = _observed(data)
    m, s = float(y.mean()), float(y.std()) or 1.0
    st = float(t.std()) or 1.0
    per = [s / st**k for k in range(len(model.params))]
    loc = (m,) + (0.0,) * (len(per) - 1)
    sigma = 1.0 if error_model in LOG_SCALE or error_model == "proportional" else s
    return Priors(loc, tuple(2.5 * p for p in per), tuple(per), sigma)


def pk_priors(model: MeanModel, data: TwinData, error_model: ErrorModel) -> Priors:
    t, y = np.asarray(data.times), np.asarray(data.values)
    mask = np.asarray(data.mask, bool)
    doses = data.regimen
    first = np.where(doses.amounts > 0, doses.times, np.inf).min(axis=1)
    after = np.where(mask, t - first[:, None], np.nan)
    span = float(np.nanmedian(np.nanmax(after, axis=1)))
    ke = 3.0 / max(span, 1e-6)  # about 4 half-lives observed
    peak = np.where(mask, y, -np.inf).max(axis=1)
    v = float(np.median(doses.amounts.sum(axis=1) / np.maximum(peak, 1e-12)))
    t_peak = np.take_along_axis(after, np.argmax(np.where(mask, y, -np.inf), 1)[:, None], 1)
    ka = 1.0 / max(float(np.nanmedian(t_peak)), 1e-6)
    guess = {"lKe": np.log(ke), "lCl": np.log(ke * v), "lV": np.log(v), "lKa": np.log(ka)}
    # more compartments: V1 from the peak, each peripheral volume twice the one before, and
    # intercompartmental clearances equal to the elimination clearance (SD 2 covers the rest)
    guess |= {"lV1": np.log(v), "lV2": np.log(2 * v), "lV3": np.log(4 * v)}
    guess |= {"lQ": guess["lCl"], "lQ2": guess["lCl"], "lQ3": guess["lCl"] - np.log(4.0)}
    n = len(model.params)
    sigma = (
        1.0 if error_model in LOG_SCALE or error_model == "proportional" else float(y[mask].std())
    )
    return Priors(tuple(float(guess[p]) for p in model.params), (2.0,) * n, (1.0,) * n, sigma)


def default_priors(model: MeanModel, data: TwinData, error_model: ErrorModel) -> Priors:
    """Weakly informative priors on the scale of ``data`` for ``model`` (see the module)."""
    if model.kind == "pk":
        route = data.regimen.route
        oral = np.ones_like(data.regimen.amounts, bool) if route is None else route == ORAL
        if not model.absorption and np.any(oral & (data.regimen.amounts > 0)):
            raise ValueError(
                "oral doses need a model with absorption (lKa): pk_oral, pk_oral_ke or pk2_oral"
            )
        return pk_priors(model, data, error_model)
    return growth_priors(model, data, error_model)


class PriorCheck(NamedTuple):
    tail_fraction: float  # observations outside the central 99% of their prior predictive
    mean_quantile: float  # prior-predictive quantile of the observed cohort mean
    problems: tuple[str, ...]


def prior_predictive_check(
    spec: HierarchicalSpec,
    data: TwinData,
    *,
    key: jax.Array,
    num_samples: int = 400,
    max_tail_fraction: float = 0.1,
    warn: bool = True,
) -> PriorCheck:
    """Draws ``num_samples`` cohorts from the prior and compares the observations with them.

    Example:
        >>> from twinjax.bayes.models import mean_model
        >>> from twinjax.bayes.tables import longitudinal_data
        >>> import pandas as pd, jax
        >>> obs = pd.DataFrame({"subject_id": [0, 0, 1, 1], "time": [0.0, 1.0] * 2,
        ...                     "value": [1000.0, 1010.0, 990.0, 1005.0]})
        >>> data = longitudinal_data(obs)
        >>> model = mean_model("linear")
        >>> bad = HierarchicalSpec(model.predict, model.params)  # Normal(0, 2) means
        >>> prior_predictive_check(bad, data, key=jax.random.key(0), warn=False).tail_fraction
        1.0
    """
    prior = Predictive(hierarchical_model, num_samples=num_samples)
    draws = np.asarray(prior(key, spec, data._replace(values=None))["y"])
    mask = np.asarray(data.mask, bool)
    y = np.asarray(to_model_scale(spec.error_model, jnp.asarray(data.values)))
    below = np.mean(draws < y[None], axis=0)[mask]
    tail_fraction = float(np.mean((below < 0.005) | (below > 0.995)))
    means = np.nanmean(np.where(mask[None], draws, np.nan), axis=(1, 2))
    mean_quantile = float(np.mean(means < y[mask].mean()))
    problems = []
    if tail_fraction > max_tail_fraction:
        problems.append(
            f"{tail_fraction:.0%} of the observations lie outside the central 99% of the prior "
            "predictive"
        )
    if not 0.005 <= mean_quantile <= 0.995:
        problems.append(f"the cohort mean sits at prior-predictive quantile {mean_quantile:.3f}")
    if warn and problems:
        msg = "priors put the data in their far tails: " + "; ".join(problems)
        warnings.warn(msg + " (rescale the priors to the data's units)", PriorWarning, stacklevel=2)
    return PriorCheck(tail_fraction, mean_quantile, tuple(problems))
