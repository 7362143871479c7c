"""Glycaemic outcomes of a glucose trace: time in ranges and Kovatchev's risk indices.

Times are fractions of the readings (the last axis; any leading axes are a batch): in range
70-180 mg/dL inclusive, below 70, below 54 and above 180 (the international consensus ranges,
Battelino et al., Diabetes Care 2019). The risk indices are Kovatchev's: the blood-glucose scale
is symmetrized by ``f(BG) = 1.509 (ln(BG)^1.084 - 5.381)`` (BG in mg/dL; ``f`` is 0 at
112.5 mg/dL), the risk of a reading is ``10 f^2``, and LBGI (HBGI) is the mean over all readings
of the risk of those with ``f < 0`` (``f > 0``), the others counting 0 (Kovatchev et al.,
Diabetes Care 1998 and 2006). simglucose's ``risk_index(BG, horizon)`` averages the low risks
over the low readings only, so it agrees with this definition for one reading at a time (how
its environment records them, whose per-step mean is the trace's LBGI/HBGI) and differs by the
fraction of low (high) readings on a longer window.
"""

from typing import NamedTuple

import jax.numpy as jnp
from jaxtyping import Array, ArrayLike, Float, Real

LOW, HIGH = 70.0, 180.0  # mg/dL, the target range
VERY_LOW = 54.0  # mg/dL, clinically significant hypoglycaemia


class Outcomes(NamedTuple):
    """Outcomes of each trace (fractions of readings; risk indices unitless)."""

    tir: Float[Array, "*batch"]  # 70 <= BG <= 180
    below70: Float[Array, "*batch"]
    below54: Float[Array, "*batch"]
    above180: Float[Array, "*batch"]
    lbgi: Float[Array, "*batch"]
    hbgi: Float[Array, "*batch"]


def risk(bg: Real[ArrayLike, "*batch"]) -> Float[Array, "*batch"]:
    """Kovatchev's symmetrized glucose ``f(BG)`` (negative below 112.5 mg/dL)."""
    return 1.509 * (jnp.log(jnp.asarray(bg)) ** 1.084 - 5.381)


def risk_indices(bg: Real[ArrayLike, "*batch time"]) -> tuple[Float[Array, "*batch"], ...]:
    """``(LBGI, HBGI)`` of each trace: the mean over readings of ``10 f^2`` on either side."""
    f = risk(bg)
    r = 10.0 * f**2
    return jnp.mean(jnp.where(f < 0, r, 0.0), -1), jnp.mean(jnp.where(f > 0, r, 0.0), -1)


def outcomes(bg: Real[ArrayLike, "*batch time"]) -> Outcomes:
    """Time in, below and above range and LBGI/HBGI of glucose traces (mg/dL, last axis time).

    Example:
        >>> o = outcomes(jnp.array([[60.0, 100.0, 150.0, 200.0], [100.0, 110.0, 120.0, 130.0]]))
        >>> o.tir.tolist(), o.below70.tolist(), o.above180.tolist()
        ([0.5, 1.0], [0.25, 0.0], [0.25, 0.0])
    """
    bg = jnp.asarray(bg)
    bg = bg if jnp.issubdtype(bg.dtype, jnp.floating) else bg.astype(jnp.float32)
    if bg.ndim == 0 or bg.shape[-1] == 0:
        raise ValueError(f"outcomes need at least one reading on the last axis, got {bg.shape}")
    frac = lambda hit: jnp.mean(hit.astype(bg.dtype), -1)
    lbgi, hbgi = risk_indices(bg)
    return Outcomes(
        frac((bg >= LOW) & (bg <= HIGH)), frac(bg < LOW), frac(bg < VERY_LOW), frac(bg > HIGH),
        lbgi, hbgi,
    )  # fmt: skip
