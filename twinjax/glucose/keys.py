"""The PRNG keys of a glucose run, one per phase, split from its seed in one fixed order, so
that a script reproduces ``experiment=glucose_twins``'s cohort and fits from the same seed."""

from typing import NamedTuple

import jax
from jaxtyping import Array, Key


class RunKeys(NamedTuple):
    """One key per phase of ``experiment=glucose_twins`` (in split order)."""

    cohort: Key[Array, ""]  # the virtual cohort's meals and sensor noise
    recurrent: Key[Array, ""]  # the recurrent twins
    federated: Key[Array, ""]  # the federated twins
    forecast: Key[Array, ""]  # the recurrent twins' forecasts
    mechanistic: Key[Array, ""]  # the Bayesian mechanistic twin's identification
    mechanistic_forecast: Key[Array, ""]  # its forecasts
    loop: Key[Array, ""]  # the closed loop's meals and sensor noise


def run_keys(seed: int) -> RunKeys:
    """The run's keys from ``seed`` (``jax.random.split(key(seed), 7)``, in field order)."""
    return RunKeys(*jax.random.split(jax.random.key(seed), len(RunKeys._fields)))
