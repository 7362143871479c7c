"""Glucose digital twins for type-1 diabetes, built on :mod:`twinjax.physiology`: the Bayesian
mechanistic twin identified from CGM, insulin and carbohydrate records, a hybrid with a learned
residual, recurrent and federated twins on the same records, and a bolus advisor that chooses
insulin by gradient through the twin (verified closed loop in simglucose)."""

from twinjax.adapters.glucose.advisor import Advice, Advisor, advise
from twinjax.adapters.glucose.closed_loop import (
    TwinController,
    patient_controller,
    perturbed_twin,
    twin_controller,
)
from twinjax.adapters.glucose.hybrid import HybridTwin, fit_hybrid, forecast_hybrid
from twinjax.adapters.glucose.idata import mechanistic_inference_data
from twinjax.adapters.glucose.intervals import day_origins, interval_scale, widen
from twinjax.adapters.glucose.map_twin import fit_map
from twinjax.adapters.glucose.mechanistic import (
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
from twinjax.adapters.glucose.records import Records, glucose_path, records, steady_state
from twinjax.adapters.glucose.replay import THERAPIES, Therapy, replay_cohort, therapy
from twinjax.adapters.glucose.twin import MechanisticTwin
from twinjax.adapters.glucose.verify import (
    outcomes_by_group,
    plot_closed_loop,
    run_closed_loop,
)

__all__ = [
    "Advice",
    "Advisor",
    "ESTIMATED",
    "HybridTwin",
    "MechanisticFit",
    "MechanisticTwin",
    "Records",
    "THERAPIES",
    "Therapy",
    "TwinController",
    "advise",
    "calibration_scale",
    "day_origins",
    "fit_hybrid",
    "fit_map",
    "fit_mechanistic",
    "forecast_hybrid",
    "forecast_mechanistic",
    "glucose_path",
    "interval_scale",
    "mechanistic_inference_data",
    "outcomes_by_group",
    "patient_controller",
    "perturbed_twin",
    "plot_closed_loop",
    "records",
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
