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
from twinjax.adapters.glucose.twin import MechanisticTwin
from twinjax.adapters.glucose.verify import (
    outcomes_by_group,
    plot_closed_loop,
    run_closed_loop,
)

__all__ = [
    "Advice",
    "Advisor",
    "MechanisticTwin",
    "TwinController",
    "advise",
    "outcomes_by_group",
    "patient_controller",
    "perturbed_twin",
    "plot_closed_loop",
    "run_closed_loop",
    "twin_controller",
]
