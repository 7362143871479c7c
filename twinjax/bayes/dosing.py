"""Personalized dosing: the repeated oral dose that keeps steady state inside a target window.

At steady state the concentration is linear in the dose, ``C(t) = D g(t)``, so for one posterior
draw the doses that keep ``low <= C(t) <= high`` for all ``t`` in the interval form the interval
``[low / min g, high / max g]`` (empty when the peak-to-trough ratio exceeds ``high / low``). The
posterior probability of success of dose ``D`` is the fraction of draws whose interval holds ``D``;
it is maximal at one of the draws' lower endpoints, so searching those is exact. Ties (and the
all-zero case) go to the dose nearest the median of the draws' balancing doses
``sqrt(low high / (min g max g))``.

When no dose is likely to keep the whole interval inside the window (a peak-to-trough ratio above
``high / low``, common with 12 h dosing of a drug with an 8 h half-life), :func:`choose_dose_time`
gives the dose maximizing the expected fraction of the interval spent inside the window instead.
"""

from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, ArrayLike, Float

from twinjax.bayes.pk import oral_steady_state


class TimeInWindow(NamedTuple):
    dose: float
    expected_fraction: float  # posterior mean of the fraction of the interval inside the window
    peak_to_trough: np.ndarray  # [draws]


class DoseChoice(NamedTuple):
    dose: float  # per dose, in the units of the data's dose amounts
    probability: float  # posterior probability that steady state stays in the window
    dose_bounds: np.ndarray  # [draws, 2]: acceptable dose interval of each draw (lo > hi: none)


def steady_state_profiles(
    theta: Float[ArrayLike, "draws 3"], interval: float, *, n_grid: int = 241
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
    theta: Float[ArrayLike, "draws 3"],
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
    # the dose balancing trough/low against high/peak, per draw; its median breaks ties
    centre = float(np.median(np.sqrt(bounds[:, 0] * bounds[:, 1])))
    if prob.max() == 0.0:
        return DoseChoice(centre, 0.0, bounds)
    tied = np.flatnonzero(prob == prob.max())
    best = tied[np.argmin(np.abs(np.log(bounds[tied, 0] / centre)))]
    return DoseChoice(float(bounds[best, 0]), float(prob[best]), bounds)


def choose_dose_time(
    theta: Float[ArrayLike, "draws 3"],
    *,
    interval: float = 12.0,
    low: float = 10.0,
    high: float = 20.0,
    n_grid: int = 241,
    n_doses: int = 400,
) -> TimeInWindow:
    """The dose maximizing the posterior expected fraction of time in ``[low, high]`` at steady
    state, searched on ``n_doses`` log-spaced doses spanning every draw's window."""
    g = steady_state_profiles(jnp.asarray(theta), interval, n_grid=n_grid)
    lo_d, hi_d = low / jnp.max(g), high / jnp.min(g)
    doses = jnp.exp(jnp.linspace(jnp.log(lo_d), jnp.log(hi_d), n_doses))

    def frac(d):
        c = d * g
        return jnp.mean((c >= low) & (c <= high))

    fractions = jax.lax.map(frac, doses)
    best = int(jnp.argmax(fractions))
    ratio = np.asarray(jnp.max(g, axis=1) / jnp.min(g, axis=1))
    return TimeInWindow(float(doses[best]), float(fractions[best]), ratio)
