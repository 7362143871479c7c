"""Glucose digital twins for type-1 diabetes, built on :mod:`twinjax.physiology`: the Bayesian
mechanistic twin identified from CGM, insulin and carbohydrate records (six parameters, or all
of them under a population prior), a hybrid with a learned residual, recurrent and federated
twins on the same records, and a bolus advisor that chooses insulin by gradient through the twin
(verified closed loop in simglucose)."""

from twinjax.glucose.advisor import Advice, Advisor, advise
from twinjax.glucose.closed_loop import (
    TwinController,
    patient_controller,
    perturbed_twin,
    twin_controller,
)
from twinjax.glucose.hybrid import HybridTwin, fit_hybrid, forecast_hybrid
from twinjax.glucose.idata import mechanistic_inference_data
from twinjax.glucose.identification import TWINS, TwinKind, identify
from twinjax.glucose.intervals import day_origins, interval_scale, widen
from twinjax.glucose.keys import RunKeys, run_keys
from twinjax.glucose.map_twin import fit_map
from twinjax.glucose.mechanistic import (
    ESTIMATED,
    MechanisticFit,
    calibration_scale,
    fit_mechanistic,
    forecast_mechanistic,
    recovery,
    recovery_coverage,
    reference_theta,
    twin_paths,
)
from twinjax.glucose.population import FREE, Population, population
from twinjax.glucose.population_fit import PopulationFit, fit_population
from twinjax.glucose.records import Records, glucose_path, records, steady_state
from twinjax.glucose.replay import THERAPIES, Therapy, replay_cohort, therapy
from twinjax.glucose.twin import MechanisticTwin
from twinjax.glucose.verify import (
    outcomes_by_group,
    plot_closed_loop,
    run_closed_loop,
)

__all__ = [
    "Advice",
    "Advisor",
    "ESTIMATED",
    "FREE",
    "HybridTwin",
    "MechanisticFit",
    "MechanisticTwin",
    "Population",
    "PopulationFit",
    "Records",
    "RunKeys",
    "THERAPIES",
    "TWINS",
    "Therapy",
    "TwinController",
    "TwinKind",
    "advise",
    "calibration_scale",
    "day_origins",
    "fit_hybrid",
    "fit_map",
    "fit_mechanistic",
    "fit_population",
    "forecast_hybrid",
    "forecast_mechanistic",
    "glucose_path",
    "identify",
    "interval_scale",
    "mechanistic_inference_data",
    "outcomes_by_group",
    "patient_controller",
    "perturbed_twin",
    "plot_closed_loop",
    "population",
    "records",
    "run_keys",
    "recovery",
    "recovery_coverage",
    "reference_theta",
    "replay_cohort",
    "run_closed_loop",
    "steady_state",
    "therapy",
    "twin_controller",
    "twin_paths",
    "widen",
]
