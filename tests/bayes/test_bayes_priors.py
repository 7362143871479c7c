"""Default priors on the data's own scale: no hand-set priors on cohorts near 0.1, 10 and 1,000;
the prior-predictive check warns when the priors put the data in their far tails."""

import jax
import numpy as np
import pandas as pd
import pytest

from twinjax.bayes import HierarchicalSpec, hierarchical_model, population_draws, run_nuts
from twinjax.bayes.models import mean_model
from twinjax.bayes.priors import PriorWarning, default_priors, prior_predictive_check
from twinjax.bayes.tables import longitudinal_data

MODEL = mean_model("linear")


def _cohort(scale: float, n: int = 30, k: int = 6, seed: int = 0) -> pd.DataFrame:
    """Linear growth: intercepts ``scale (1 + 0.05 z)``, slopes ``0.1 scale (1 + 0.1 z)``, noise
    SD ``0.02 scale``, 6 irregular visits over 10 time units."""
    rng = np.random.default_rng(seed)
    b0 = scale * (1 + 0.05 * rng.standard_normal(n))
    b1 = 0.1 * scale * (1 + 0.1 * rng.standard_normal(n))
    t = np.sort(rng.uniform(0, 10, (n, k)), axis=1)
    y = b0[:, None] + b1[:, None] * t + 0.02 * scale * rng.standard_normal((n, k))
    return pd.DataFrame({"subject_id": np.repeat(np.arange(n), k), "time": t.ravel(),
                         "value": y.ravel()})  # fmt: skip


def _default_spec(data) -> HierarchicalSpec:
    p = default_priors(MODEL, data, "additive")
    return HierarchicalSpec(MODEL.predict, MODEL.params, prior_loc=p.prior_loc,
                            prior_scale=p.prior_scale, omega_scale=p.omega_scale,
                            sigma_scale=p.sigma_scale, standardized=True)  # fmt: skip


@pytest.mark.integration
@pytest.mark.parametrize("scale", [0.1, 10.0, 1000.0])
def test_default_priors_recover_growth_on_any_scale(scale):
    data = longitudinal_data(_cohort(scale))
    spec = _default_spec(data)
    assert prior_predictive_check(spec, data, key=jax.random.key(1)).problems == ()
    fit = run_nuts(hierarchical_model, jax.random.key(0), spec, data, num_warmup=200,
                   num_samples=200, num_chains=2)  # fmt: skip
    pop = population_draws(spec, fit.samples)
    assert pop["intercept"].mean() == pytest.approx(scale, rel=0.05)
    assert pop["slope"].mean() == pytest.approx(0.1 * scale, rel=0.05)
    assert pop["sigma_add"].mean() == pytest.approx(0.02 * scale, rel=0.2)


def test_prior_check_warns_when_priors_miss_the_data_scale():
    data = longitudinal_data(_cohort(1000.0))
    unit = HierarchicalSpec(MODEL.predict, MODEL.params)  # Normal(0, 2) means, HalfNormal(1) SDs
    with pytest.warns(PriorWarning, match="far tails"):
        check = prior_predictive_check(unit, data, key=jax.random.key(1))
    assert check.tail_fraction > 0.9 and check.mean_quantile == 1.0
