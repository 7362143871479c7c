"""Insulin pump: simglucose's discretization of basal and bolus rates.

A rate (U/min) is converted to pmol/min, rounded to the pump's increment (``inc`` pmol/min, half to
even as numpy rounds) and clipped to its range (in U/min, as simglucose compares them). Rounding
has zero gradient; a differentiable caller passes ``pump=None`` to the closed loop instead.
"""

from dataclasses import dataclass

import jax.numpy as jnp
from jaxtyping import Array, ArrayLike, Float

from twinjax.physiology.params import device_row

U_TO_PMOL = 6000.0


@dataclass(frozen=True)
class Pump:
    """An insulin pump's limits (a row of simglucose's pump_params.csv)."""

    name: str = "Insulet"
    min_bolus: float = 0.0
    max_bolus: float = 30.0
    inc_bolus: float = 0.05
    min_basal: float = 0.0
    max_basal: float = 30.0
    inc_basal: float = 0.05

    @classmethod
    def named(cls, name: str) -> "Pump":
        """The pump ``name`` (Cozmo or Insulet) from pump_params.csv."""
        r = device_row("pump", name)
        fields = ("min_bolus", "max_bolus", "inc_bolus", "min_basal", "max_basal", "inc_basal")
        return cls(name, *(float(r[f]) for f in fields))

    def basal(self, rate: Float[ArrayLike, "*batch"]) -> Float[Array, "*batch"]:
        """The basal rate delivered (U/min) for the requested ``rate``."""
        return _discretize(rate, self.inc_basal, self.min_basal, self.max_basal)

    def bolus(self, rate: Float[ArrayLike, "*batch"]) -> Float[Array, "*batch"]:
        """The bolus rate delivered (U/min) for the requested ``rate``."""
        return _discretize(rate, self.inc_bolus, self.min_bolus, self.max_bolus)


def _discretize(rate, inc: float, lo: float, hi: float):
    pmol = jnp.round(jnp.asarray(rate) * U_TO_PMOL / inc) * inc
    return jnp.clip(pmol / U_TO_PMOL, lo, hi)
