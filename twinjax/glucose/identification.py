"""One entry point for the Bayesian glucose twin, by name: the old mechanistic twin
(:func:`~twinjax.glucose.mechanistic.fit_mechanistic`: six parameters per patient, the others at
their age group's leave-one-out medians, a low-rank guide over the cohort) or the population
twin (:func:`~twinjax.glucose.population_fit.fit_population`: all of them under the population
prior, a full-rank guide per patient, multi-start mode search).

Both return a :class:`~twinjax.glucose.twin.MechanisticTwin` (posterior draws of every
patient's full parameter vector, its fasting state and CGM residual), which is what forecasts,
the hybrid, parameter recovery and the bolus advisor read, so either twin serves them all.
"""

from typing import Literal

from jaxtyping import Array, Key

from twinjax.glucose.mechanistic import MechanisticFit, fit_mechanistic
from twinjax.glucose.population_fit import PopulationFit, fit_population
from twinjax.glucose.records import Records
from twinjax.glucose.twin import MechanisticTwin

TwinKind = Literal["mechanistic", "population"]
TWINS: tuple[TwinKind, ...] = ("mechanistic", "population")


def identify(
    key: Key[Array, ""],
    recs: Records,
    *,
    twin: TwinKind = "mechanistic",
    fit_days: float = 2.0,
    draws: int = 64,
    svi_steps: int = 800,
    svi_lr: float = 0.02,
    mode_steps: int = 300,
    steps: int = 300,
    starts: int = 3,
    progress: bool = False,
) -> tuple[MechanisticTwin, MechanisticFit | PopulationFit]:
    """Identifies the twin ``twin`` names from the first ``fit_days`` days of ``recs``.

    Args:
        key: PRNG key (the fit and the posterior draws).
        recs: the records.
        twin: ``"mechanistic"`` or ``"population"`` (module docstring).
        fit_days: days fitted, from the start of the records.
        draws: posterior draws kept in the twin.
        svi_steps: the mechanistic twin's SVI steps.
        svi_lr: the mechanistic twin's Adam learning rate.
        mode_steps: the population twin's Adam steps towards the posterior mode.
        steps: the population twin's ELBO steps.
        starts: the population twin's mode-search starts.
        progress: report the fit's progress.

    Returns:
        The twin and its fit (:class:`MechanisticFit` or :class:`PopulationFit`).
    """
    if twin == "population":
        return fit_population(key, recs, fit_days=fit_days, mode_steps=mode_steps, steps=steps,
                              starts=starts, draws=draws, progress=progress)  # fmt: skip
    if twin == "mechanistic":
        return fit_mechanistic(key, recs, fit_days=fit_days, steps=svi_steps, lr=svi_lr,
                               draws=draws, progress=progress)  # fmt: skip
    raise ValueError(f"twin={twin!r}: use one of {TWINS}")
