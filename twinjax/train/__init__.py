"""Training: population twin, personalized twins, checkpointed loop."""

from twinjax.train.loop import TrainingDiverged, checkpoint_manager, restore_latest, run_loop
from twinjax.train.personalize import PersonalState, fit_personal
from twinjax.train.population import TrainState, fit_population, make_optimizer
from twinjax.train.prepare import CohortArrays, Scalers, prepare, twin_spec

__all__ = [
    "CohortArrays",
    "PersonalState",
    "Scalers",
    "TrainState",
    "TrainingDiverged",
    "checkpoint_manager",
    "fit_personal",
    "fit_population",
    "make_optimizer",
    "prepare",
    "restore_latest",
    "run_loop",
    "twin_spec",
]
