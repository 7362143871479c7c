"""The options of a hierarchical Bayesian model fitted to long-format tables: the mean model,
random effects, error model, priors, covariates and inference. A plain dataclass: the app's
``experiment=hierarchical`` and ``experiment=pk_remifentanil`` extend it with their run's
settings (their ``experiment.*`` entries); :mod:`twinjax.bayes.from_options` reads the tables,
builds the :class:`~twinjax.bayes.HierarchicalSpec` and fits it as they describe."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

from twinjax.bayes.inference import Nuts
from twinjax.bayes.residual import ErrorModel


@dataclass
class HierarchicalOptions:
    """A hierarchical model's mean model, random effects, error model, priors, covariates and
    inference (NUTS or SVI)."""

    # linear | quadratic (growth in time); pk_iv (lCl, lV; bolus and infusion doses),
    # pk_oral (lCl, lV, lKa), pk_oral_ke (lKe, lKa, lCl as nlme's SSfol); two compartments
    # pk2_iv (lCl, lV1, lQ, lV2), pk2_oral (+ lKa); three: pk3_iv (lCl, lV1, lQ2, lV2, lQ3, lV3)
    model: str = "linear"
    variable: str | None = None  # the outcome, when the observations hold several variables
    random: list[str] | None = None  # parameters with random effects; None: all
    correlated: bool = False  # LKJ-correlated random effects (diagonal otherwise)
    # LKJ prior concentration of those correlations (1: uniform; larger: nearer 0)
    lkj_concentration: float = 2.0
    error_model: ErrorModel = "additive"  # additive | proportional | combined | log_additive
    # time centring: none | mean (of the observation times) | a number (e.g. "1990")
    centre_time: str = "none"
    # priors; None: weakly informative defaults on the data's scale (twinjax.bayes.priors)
    prior_loc: list[float] | None = None  # one per parameter
    prior_scale: list[float] | None = None  # one per parameter
    omega_scale: list[float] | None = None  # one per random parameter
    sigma_scale: float | None = None  # HalfNormal scale of the residual error parameters
    # covariates from the static table (data.static): numeric ones centred (and scaled by their SD
    # with scale_covariates), others treatment-coded against their first level (sorted); the
    # centres and reference levels are written to metrics.json and report.md
    covariates: list[str] = field(default_factory=list)
    scale_covariates: bool = False  # also divide numeric covariates by their SD (effects per SD)
    # linear effects on parameters, e.g. {lCl: [Age, LBM], lV1: [Age]} (None: none)
    covariate_effects: Any = None  # dict[str, list[str]]: a typed dict refuses new keys
    beta_scale: float = 1.0  # Normal prior scale of the covariate effects
    parameterization: Literal["noncentred", "centred"] = "noncentred"  # random effects' form
    inference: Literal["nuts", "svi"] = "nuts"  # NUTS, or SVI with a mean-field guide
    # inference=nuts: NUTS's settings (twinjax.bayes.Nuts): warm-up, draws and chains...
    nuts: Nuts = field(default_factory=lambda: Nuts(num_warmup=1000, num_samples=1000))
    svi_steps: int = 3000  # SVI steps (mean-field normal guide, Adam)
    svi_lr: float = 0.01  # SVI's Adam learning rate
    svi_draws: int = 1000  # posterior draws taken from the fitted SVI guide
    progress: bool = True  # NUTS or SVI progress: a bar on a terminal, log lines elsewhere
