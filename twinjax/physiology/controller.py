"""simglucose's basal-bolus controller (``BBController``): the patients' clinical settings.

Basal is the steady-state rate ``u2ss BW / 6000`` U/min. When the last sensor period announced a
meal, the bolus covers it with the carb ratio and, if the sensor reads above 150 mg/dL, corrects
towards ``target`` with the correction factor; the dose (U) is delivered as a rate over the next
sample period.
"""

from typing import NamedTuple

import jax.numpy as jnp
from jaxtyping import Array, ArrayLike, Float

from twinjax.physiology.params import ClinicalSettings, PatientParams

CORRECTION_ABOVE = 150.0  # mg/dL: no correction bolus at or below this reading


class Action(NamedTuple):
    """Insulin requested for the next sample period (U/min each)."""

    basal: Float[Array, ""]
    bolus: Float[Array, ""]


def steady_basal(p: PatientParams) -> Float[Array, "*patients"]:
    """The basal rate (U/min) that holds the patient at its steady state: ``u2ss BW / 6000``."""
    return p.get("u2ss") * p.get("BW") / 6000.0


def basal_bolus(
    cgm: Float[ArrayLike, ""],
    meal: Float[ArrayLike, ""],
    p: PatientParams,
    settings: ClinicalSettings,
    *,
    sample_time: int,
    target: float = 140.0,
) -> Action:
    """The ``BBController`` action for one patient.

    Args:
        cgm: the sensor value reported for the last period (mg/dL).
        meal: carbohydrate announced in the last period, as a mean rate (g/min).
        p: the patient's parameters (for the basal rate).
        settings: the patient's carb ratio and correction factor.
        sample_time: the sensor's period (minutes).
        target: the correction target (mg/dL).

    Returns:
        The basal and bolus rates (U/min).
    """
    carbs = meal * sample_time
    correction = (cgm > CORRECTION_ABOVE) * (cgm - target) / settings.correction_factor
    dose = jnp.where(meal > 0, carbs / settings.carb_ratio + correction, 0.0)
    return Action(steady_basal(p), dose / sample_time)
