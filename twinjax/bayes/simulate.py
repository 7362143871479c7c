"""Simulating cohorts from a hierarchical twin with known population parameters."""

import jax
import numpy as np
from numpyro import handlers

from twinjax.bayes.data import TwinData
from twinjax.bayes.hierarchical import HierarchicalSpec, hierarchical_model
from twinjax.bayes.residual import from_model_scale


def simulate_cohort(
    spec: HierarchicalSpec, design: TwinData, population: dict, *, key: jax.Array
) -> tuple[TwinData, np.ndarray]:
    """New individuals and observations at ``design``'s times, doses, covariates and mask.

    ``population`` fixes the population sites (``mu``, ``omega``, ``beta``, residual SDs, ...);
    random effects and residual errors are drawn. Returns the cohort and the true ``theta``.
    """
    model = handlers.condition(hierarchical_model, population)
    with handlers.trace() as tr, handlers.seed(rng_seed=key):
        model(spec, design._replace(values=None))
    values = np.asarray(from_model_scale(spec.error_model, tr["y"]["value"]))
    values = np.where(design.mask, values, design.values)
    return design._replace(values=values), np.asarray(tr["theta"]["value"])
