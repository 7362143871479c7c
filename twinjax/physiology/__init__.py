"""The UVa/Padova glucose simulator (as simglucose 0.2.11 implements it) in JAX.

One patient is the unit (``simulate``, ``run``, ``run_basal_bolus``); ``jax.vmap`` over patients
and scenarios. ``simulate_cohort``/``write_cohort`` make a virtual CGM cohort for the data layer;
``twinjax.physiology.reference`` runs simglucose itself (optional extra ``glucose``).
``UVA_PADOVA`` is the model through the mechanistic twin protocol (:mod:`twinjax.mechanistic`).
"""

from twinjax.physiology.closed_loop import Trace, run, run_basal_bolus
from twinjax.physiology.cohort import simulate_cohort, write_cohort
from twinjax.physiology.controller import Action, basal_bolus, steady_basal
from twinjax.physiology.model import UVA_PADOVA
from twinjax.physiology.outcomes import Outcomes, outcomes
from twinjax.physiology.params import (
    PARAM_NAMES,
    STATE_NAMES,
    ClinicalSettings,
    PatientParams,
    load_patients,
    load_settings,
    patient_names,
)
from twinjax.physiology.pump import Pump
from twinjax.physiology.scenario import DailyMeals, meal_minutes, random_meals, random_scenario
from twinjax.physiology.sensor import Sensor, cgm_noise, measure
from twinjax.physiology.uva_padova import (
    SUBSTEPS,
    PatientState,
    glucose,
    initial_state,
    minute_step,
    simulate,
)

__all__ = [
    "PARAM_NAMES",
    "STATE_NAMES",
    "SUBSTEPS",
    "UVA_PADOVA",
    "Action",
    "ClinicalSettings",
    "DailyMeals",
    "Outcomes",
    "PatientParams",
    "PatientState",
    "Pump",
    "Sensor",
    "Trace",
    "basal_bolus",
    "cgm_noise",
    "glucose",
    "initial_state",
    "load_patients",
    "load_settings",
    "meal_minutes",
    "measure",
    "minute_step",
    "outcomes",
    "patient_names",
    "random_meals",
    "random_scenario",
    "run",
    "run_basal_bolus",
    "simulate",
    "simulate_cohort",
    "steady_basal",
    "write_cohort",
]
