"""Personalized dosing: the repeated oral dose that keeps steady state inside a target window.

At steady state the concentration is linear in the dose, ``C(t) = D g(t)``, so for one posterior
draw the doses that keep ``low <= C(t) <= high`` for all ``t`` in the interval form the interval
``[low / min g, high / max g]`` (empty when the peak-to-trough ratio exceeds ``high / low``). The
posterior probability of success of dose ``D`` is the fraction of draws whose interval holds ``D``;
it is maximal at one of the draws' lower endpoints, so searching those is exact.
"""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, Float

from twinjax.bayes.pk import oral_steady_state


class DoseChoice(NamedTuple):
    dose: float  # per dose, in the units of the data's dose amounts
    probability: float  # posterior probability that steady state stays in the window
    dose_bounds: np.ndarray  # [draws, 2]: acceptable dose interval of each draw (lo > hi: none)


def steady_state_profiles(
    theta: Float[Array, "draws 3"], interval: float, *, n_grid: int = 241
) -> Float[Array, "draws grid"]:
    """Steady-state concentration per unit dose on ``n_grid`` times over one interval, per draw of
    ``(lKe, lKa, lCl)``."""
    t = jnp.linspace(0.0, interval, n_grid)
    return jax.vmap(lambda th: oral_steady_state(t, 1.0, interval, th[0], th[1], th[2]))(theta)


def window_probability(dose_bounds: np.ndarray, doses) -> np.ndarray:
    """Fraction of draws whose acceptable interval contains each of ``doses``."""
    d = np.asarray(doses, dtype=np.float64)[:, None]
    lo, hi = dose_bounds[None, :, 0], dose_bounds[None, :, 1]
    return np.mean((d >= lo) & (d <= hi), axis=1)


def choose_dose(
    theta: Float[Array, "draws 3"],
    *,
    interval: float = 12.0,
    low: float = 10.0,
    high: float = 20.0,
    n_grid: int = 241,
) -> DoseChoice:
    """The dose every ``interval`` that maximizes P(low <= steady-state C(t) <= high for all t)."""
    g = np.asarray(steady_state_profiles(jnp.asarray(theta), interval, n_grid=n_grid))
    bounds = np.stack([low / g.min(axis=1), high / g.max(axis=1)], axis=1)
    prob = window_probability(bounds, bounds[:, 0])
    best = int(np.argmax(prob))
    return DoseChoice(float(bounds[best, 0]), float(prob[best]), bounds)
