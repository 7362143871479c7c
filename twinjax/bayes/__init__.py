"""Bayesian twins: hierarchical models, PK closed forms, inference, diagnostics
(forecasts are scored by :func:`twinjax.eval.score.score`)."""

from twinjax.bayes.data import TwinData, pk_data_from_frames
from twinjax.bayes.diagnostics import (
    Diagnostics,
    DiagnosticsWarning,
    bfmi,
    diagnose,
    ess_bulk,
    ess_tail,
    mcse_mean,
    problems_of,
    rank_rhat,
)
from twinjax.bayes.doses import Doses
from twinjax.bayes.dosing import DoseChoice, choose_dose, choose_dose_time
from twinjax.bayes.forecast import HeldOut, forecast, future_times, hold_out_last
from twinjax.bayes.gp import (
    GPTwins,
    exact_log_marginal,
    exact_predict,
    fit_gp_twins,
    hsgp_log_marginal,
    hsgp_predict,
    hsgp_stats,
    predict_gp_twins,
)
from twinjax.bayes.gp_cohort import GPCohortFit, fit_cohort_gp, gp_calibration
from twinjax.bayes.growth import linear_predict, polynomial_names, polynomial_predict
from twinjax.bayes.hierarchical import (
    HierarchicalSpec,
    hierarchical_model,
    individual_params,
    population_draws,
    predict_curves,
)
from twinjax.bayes.idata import hierarchical_inference_data, inference_data
from twinjax.bayes.inference import (
    NutsResult,
    SviResult,
    run_nuts,
    run_svi,
    sample_stats,
    svi_draws,
)
from twinjax.bayes.mixture import (
    mixture_calibration,
    mixture_moments,
    mixture_pit,
    mixture_samples,
    rescale_spread,
    spread_factor,
)
from twinjax.bayes.models import MEAN_MODELS, MeanModel, mean_model
from twinjax.bayes.pk import (
    iv_bolus_one_compartment,
    iv_bolus_predict,
    oral_one_compartment,
    oral_predict,
    oral_steady_state,
)
from twinjax.bayes.pk_compartments import (
    compartment_derived,
    mammillary_exponents,
    pk2_iv_predict,
    pk2_oral_predict,
    pk3_iv_predict,
    polyexponential,
    two_compartment,
    two_compartment_exponents,
)
from twinjax.bayes.pk_routes import (
    iv_cl_v_predict,
    one_compartment,
    oral_cl_v_ka_predict,
    oral_ke_ka_cl_predict,
    pk_derived,
)
from twinjax.bayes.predictive import (
    PosteriorPredictive,
    flatten_chains,
    pointwise_log_likelihood,
    posterior_predictive,
)
from twinjax.bayes.priors import (
    PriorCheck,
    Priors,
    PriorWarning,
    default_priors,
    prior_predictive_check,
)
from twinjax.bayes.recurrent import (
    BayesianTwins,
    fit_bayesian_twins,
    personal_twin_model,
    posterior_twin_draws,
    predictive_mixture,
)
from twinjax.bayes.residual import ERROR_MODELS
from twinjax.bayes.simulate import simulate_cohort
from twinjax.bayes.summary import posterior_table, subject_table
from twinjax.bayes.tables import (
    covariate_columns,
    covariate_design,
    longitudinal_data,
    read_long,
    split_events,
)

__all__ = [
    "BayesianTwins",
    "Diagnostics",
    "DiagnosticsWarning",
    "DoseChoice",
    "Doses",
    "ERROR_MODELS",
    "GPCohortFit",
    "GPTwins",
    "HeldOut",
    "HierarchicalSpec",
    "MEAN_MODELS",
    "MeanModel",
    "NutsResult",
    "PosteriorPredictive",
    "PriorCheck",
    "PriorWarning",
    "Priors",
    "SviResult",
    "TwinData",
    "bfmi",
    "choose_dose",
    "choose_dose_time",
    "compartment_derived",
    "covariate_columns",
    "covariate_design",
    "default_priors",
    "diagnose",
    "ess_bulk",
    "ess_tail",
    "exact_log_marginal",
    "exact_predict",
    "fit_bayesian_twins",
    "fit_cohort_gp",
    "fit_gp_twins",
    "flatten_chains",
    "forecast",
    "future_times",
    "gp_calibration",
    "hierarchical_inference_data",
    "hierarchical_model",
    "hold_out_last",
    "hsgp_log_marginal",
    "hsgp_predict",
    "hsgp_stats",
    "individual_params",
    "inference_data",
    "iv_bolus_one_compartment",
    "iv_bolus_predict",
    "iv_cl_v_predict",
    "linear_predict",
    "longitudinal_data",
    "mammillary_exponents",
    "mcse_mean",
    "mean_model",
    "mixture_calibration",
    "mixture_moments",
    "mixture_pit",
    "mixture_samples",
    "one_compartment",
    "oral_cl_v_ka_predict",
    "oral_ke_ka_cl_predict",
    "oral_one_compartment",
    "oral_predict",
    "oral_steady_state",
    "personal_twin_model",
    "pk2_iv_predict",
    "pk2_oral_predict",
    "pk3_iv_predict",
    "pk_data_from_frames",
    "pk_derived",
    "pointwise_log_likelihood",
    "polyexponential",
    "polynomial_names",
    "polynomial_predict",
    "population_draws",
    "posterior_predictive",
    "posterior_table",
    "posterior_twin_draws",
    "predict_curves",
    "predict_gp_twins",
    "predictive_mixture",
    "prior_predictive_check",
    "problems_of",
    "rank_rhat",
    "read_long",
    "rescale_spread",
    "run_nuts",
    "run_svi",
    "sample_stats",
    "simulate_cohort",
    "split_events",
    "spread_factor",
    "subject_table",
    "svi_draws",
    "two_compartment",
    "two_compartment_exponents",
]
