"""Training: the population twin, then personalized twins fine-tuned together (vmapped, jitted)."""

from twinjax.train.personalize import PersonalizeOptions, PersonalState, fit_personal
from twinjax.train.population import PopulationOptions, TrainState, fit_population, make_optimizer

__all__ = [
    "PersonalState",
    "PersonalizeOptions",
    "PopulationOptions",
    "TrainState",
    "fit_personal",
    "fit_population",
    "make_optimizer",
]
