"""Glucose digital twins for type-1 diabetes, built on :mod:`twinjax.physiology`: the Bayesian
mechanistic twin identified from CGM, insulin and carbohydrate records, a hybrid with a learned
residual, recurrent and federated twins on the same records, and a bolus advisor that chooses
insulin by gradient through the twin (verified closed loop in simglucose)."""

from twinjax.adapters.glucose.twin import MechanisticTwin

__all__ = ["MechanisticTwin"]
