"""Training: the population twin, then personalized twins fine-tuned together (vmapped, jitted).

>>> import jax, tempfile
>>> from twinjax.data import prepare, synthetic_cohort
>>> from twinjax.twins import TwinSpec
>>> cohort = synthetic_cohort(jax.random.key(0), n_individuals=3, n_steps=40)
>>> arrays, _ = prepare(cohort)
>>> spec = TwinSpec.for_cohort(cohort, hidden=4, attention=False)
>>> tiny = dict(steps=2, window=8, batch_windows=2, progress=False)
>>> with tempfile.TemporaryDirectory() as tmp:
...     pop, losses = fit_population(jax.random.key(1), spec, arrays, PopulationOptions(**tiny), tmp)
...     personal, val_nll = fit_personal(
...         jax.random.key(2), spec, pop, arrays, PersonalizeOptions(**tiny), f"{tmp}/personal"
...     )
>>> losses.shape, val_nll.shape, personal.cell.wx.shape[0]
((2,), (3,), 3)
"""

from twinjax.train.options import DistributedConfig, TrainConfig
from twinjax.train.personalize import PersonalizeOptions, PersonalState, fit_personal
from twinjax.train.population import PopulationOptions, TrainState, fit_population, make_optimizer

__all__ = [
    "DistributedConfig",
    "PersonalState",
    "PersonalizeOptions",
    "PopulationOptions",
    "TrainConfig",
    "TrainState",
    "fit_personal",
    "fit_population",
    "make_optimizer",
]
