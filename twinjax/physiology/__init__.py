"""The UVa/Padova glucose simulator (as simglucose 0.2.11 implements it) in JAX."""

from twinjax.physiology.params import (
    PARAM_NAMES,
    STATE_NAMES,
    ClinicalSettings,
    PatientParams,
    load_patients,
    load_settings,
    patient_names,
)
from twinjax.physiology.uva_padova import (
    PatientState,
    glucose,
    initial_state,
    minute_step,
    simulate,
)

__all__ = [
    "PARAM_NAMES",
    "STATE_NAMES",
    "ClinicalSettings",
    "PatientParams",
    "PatientState",
    "glucose",
    "initial_state",
    "load_patients",
    "load_settings",
    "minute_step",
    "patient_names",
    "simulate",
]
