"""The hierarchical Bayesian model a :class:`~twinjax.bayes.options.HierarchicalOptions`
describes: long-format files read and checked against the model (:func:`load`,
:func:`frames_data`), its spec with data-scale default priors (:func:`build_spec`) and its fit by
NUTS or SVI (:func:`fit`). The app's ``experiment=hierarchical`` (the user's files) and
``experiment=pk_remifentanil`` (R's Remifentanil table) fit through it. A bad option is a
one-line :class:`~twinjax.runtime.errors.ConfigError` naming its ``experiment.*`` entry."""

from __future__ import annotations

import warnings

import jax
import numpy as np

from twinjax.bayes.diagnostics import DiagnosticsWarning
from twinjax.bayes.hierarchical import HierarchicalSpec, hierarchical_model
from twinjax.bayes.inference import run_nuts, run_svi, svi_draws
from twinjax.bayes.models import MeanModel, mean_model
from twinjax.bayes.options import HierarchicalOptions
from twinjax.bayes.priors import default_priors
from twinjax.bayes.tables import covariate_columns, longitudinal_data, read_long
from twinjax.data.errors import CohortError
from twinjax.data.options import DataConfig
from twinjax.runtime.errors import ConfigError


def mean_model_of(c: HierarchicalOptions) -> MeanModel:
    """The mean model ``experiment.model`` names."""
    try:
        return mean_model(c.model)
    except ValueError as e:
        raise ConfigError(f"experiment.model: {e}") from e


def load(d: DataConfig, c: HierarchicalOptions, model: MeanModel):
    """The cohort from the data group's files, checked against the model."""
    if d.source != "files" or not d.observations:
        raise ConfigError(
            "experiment=hierarchical fits your own files: pass data=files "
            "data.observations=PATH [data.interventions=PATH]"
        )
    obs = read_long(d.observations, d.subject_col)
    doses = read_long(d.interventions, d.subject_col) if d.interventions else None
    static = read_long(d.static, d.subject_col) if d.static else None
    return frames_data(obs, doses, static, d, c, model)


def frames_data(obs, doses, static, d: DataConfig, c: HierarchicalOptions, model: MeanModel):
    """The cohort from in-memory tables laid out as the data group's files describe."""
    if c.covariates and static is None:
        raise ConfigError(
            f"experiment.covariates={list(c.covariates)} are read from the static table: pass "
            "data.static=PATH (one row per subject)"
        )
    if static is not None and not c.covariates:
        raise ConfigError(
            "data.static is given but experiment.covariates is empty: name the covariates to use "
            "(experiment.covariates=[...]) or drop data.static"
        )
    has_doses = doses is not None or d.amount_col in obs.columns
    if model.kind == "growth" and has_doses:
        raise ConfigError(
            f"the growth model {c.model!r} takes no doses: drop data.interventions (or the "
            f"{d.amount_col!r} column), or choose a pk model"
        )
    if model.kind == "pk" and not has_doses:
        raise ConfigError(
            f"the PK model {c.model!r} needs doses: data.interventions=PATH, or an event table "
            f"with an {d.amount_col!r} column"
        )
    cols = dict(subject_col=d.subject_col, time_col=d.time_col, value_col=d.value_col,
                variable_col=d.variable_col, amount_col=d.amount_col, route_col=d.kind_col,
                covariate_cols=tuple(c.covariates), scale_covariates=c.scale_covariates)  # fmt: skip
    try:
        raw = longitudinal_data(obs, doses, static, variable=c.variable,
                                error_model=c.error_model, **cols)  # fmt: skip
        centre = _time_centre(c.centre_time, raw)
        if not centre:
            return raw
        return longitudinal_data(obs, doses, static, variable=c.variable,
                                 error_model=c.error_model, time_centre=centre, **cols)  # fmt: skip
    except CohortError as e:
        raise ConfigError(str(e)) from e


def covariate_effects(
    c: HierarchicalOptions, model: MeanModel, data
) -> tuple[tuple[str, str], ...]:
    """``(parameter, design column)`` pairs of ``experiment.covariate_effects`` (a categorical
    covariate contributes one pair per non-reference level)."""
    effects = c.covariate_effects or {}
    if not hasattr(effects, "items"):
        raise ConfigError(
            "experiment.covariate_effects maps parameters to covariates, e.g. "
            "{lCl:[Age,LBM],lV1:[Age]}"
        )
    pairs = []
    for param, covs in effects.items():
        if param not in model.params:
            raise ConfigError(
                f"experiment.covariate_effects: {param!r} is not a parameter of {c.model!r} "
                f"{model.params}"
            )
        for cov in covs:
            if cov not in c.covariates:
                raise ConfigError(
                    f"experiment.covariate_effects: {cov!r} is not in experiment.covariates "
                    f"{list(c.covariates)}"
                )
            pairs += [(param, col) for col in covariate_columns(data, cov)]
    unused = [cov for cov in c.covariates if not any(cov in covs for covs in effects.values())]
    if unused:  # read but on no parameter: refused rather than silently left out of the model
        raise ConfigError(
            f"experiment.covariates {unused} act on no parameter: name them in "
            f"experiment.covariate_effects, e.g. {{{model.params[0]}:{unused}}}"
        )
    return tuple(pairs)


def _time_centre(option: str, data) -> float:
    if option == "none":
        return 0.0
    if option == "mean":
        return float(np.asarray(data.times)[np.asarray(data.mask, bool)].mean())
    try:
        return float(option)
    except ValueError as e:
        raise ConfigError(f"experiment.centre_time={option!r}: use none, mean or a number") from e


def build_spec(c: HierarchicalOptions, model: MeanModel, data) -> HierarchicalSpec:
    """The model's spec: the options' priors where given, else the data-scale defaults."""
    try:
        defaults = default_priors(model, data, c.error_model)
    except ValueError as e:
        raise ConfigError(str(e)) from e
    random = tuple(c.random) if c.random is not None else model.params
    unknown = set(random) - set(model.params)
    if unknown:
        raise ConfigError(f"experiment.random: {sorted(unknown)} not in {model.params}")
    omega = c.omega_scale or tuple(defaults.omega_scale[model.params.index(p)] for p in random)
    try:
        return HierarchicalSpec(
            predict=model.predict,
            params=model.params,
            random=random,
            prior_loc=tuple(c.prior_loc or defaults.prior_loc),
            prior_scale=tuple(c.prior_scale or defaults.prior_scale),
            omega_scale=tuple(omega),
            correlated=c.correlated,
            lkj_concentration=c.lkj_concentration,
            error_model=c.error_model,
            sigma_scale=c.sigma_scale or defaults.sigma_scale,
            standardized=model.kind == "growth",
            covariate_effects=covariate_effects(c, model, data),
            beta_scale=c.beta_scale,
            centred=_centred(c.parameterization),
        )
    except ValueError as e:
        raise ConfigError(str(e)) from e


def _centred(option: str) -> bool:
    if option not in ("noncentred", "centred"):
        raise ConfigError(f"experiment.parameterization={option!r}: use noncentred or centred")
    return option == "centred"


def fit(spec, data, key, c: HierarchicalOptions):
    """(samples, grouped by chain?, divergences, NUTS' ``sample_stats`` or None for SVI)."""
    if c.inference == "nuts":
        with warnings.catch_warnings():  # raw site names; run() warns by parameter name instead
            warnings.simplefilter("ignore", DiagnosticsWarning)
            fit = run_nuts(
                hierarchical_model, key, spec, data, **c.nuts.kwargs(), progress=c.progress
            )
        return fit.samples, True, fit.num_divergences, fit.sample_stats
    if c.inference == "svi":
        k_fit, k_draw = jax.random.split(key)
        res = run_svi(hierarchical_model, k_fit, spec, data, steps=c.svi_steps, lr=c.svi_lr,
                      progress=c.progress)  # fmt: skip
        return svi_draws(res, k_draw, spec, data, num_samples=c.svi_draws), False, 0, None
    raise ConfigError(f"experiment.inference={c.inference!r}: use nuts or svi")
