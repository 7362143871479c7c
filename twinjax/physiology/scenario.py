"""Randomized daily meal scenarios, as simglucose's ``RandomScenario`` draws them.

Each day has up to six meals (breakfast, snack, lunch, snack, dinner, snack), taken with
probabilities 0.95/0.3/0.95/0.3/0.95/0.3, at a time drawn from a normal distribution truncated to
the meal's window and rounded to the minute, with an amount drawn from a normal distribution,
rounded to the gram and floored at 0 (simglucose's ``create_scenario``; the figures below are its).
Two meals drawn at the same minute keep the earlier one in that list, as simglucose's lookup does.
"""

from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, Bool, Float, Key

MINUTES_PER_DAY = 1440

PROB = np.array([0.95, 0.3, 0.95, 0.3, 0.95, 0.3])
TIME_LO = np.array([5, 9, 10, 14, 16, 20]) * 60.0
TIME_HI = np.array([9, 10, 14, 16, 20, 23]) * 60.0
TIME_MEAN = np.array([7, 9.5, 12, 15, 18, 21.5]) * 60.0
TIME_SD = np.array([60, 30, 60, 30, 60, 30], float)
AMOUNT_MEAN = np.array([45, 10, 70, 10, 80, 10], float)
AMOUNT_SD = np.array([10, 5, 10, 5, 10, 5], float)


class DailyMeals(NamedTuple):
    """The meals of each day: minute of the day, grams, and whether the meal is taken."""

    time: Float[Array, "days 6"]
    amount: Float[Array, "days 6"]
    taken: Bool[Array, "days 6"]


def random_meals(key: Key[Array, ""], days: int) -> DailyMeals:
    """``days`` days of meals drawn independently (one key per day from ``key``)."""

    def _day(k):
        k_take, k_time, k_amount = jax.random.split(k, 3)
        taken = jax.random.uniform(k_take, (6,)) < PROB
        lo, hi = (TIME_LO - TIME_MEAN) / TIME_SD, (TIME_HI - TIME_MEAN) / TIME_SD
        z = jax.random.truncated_normal(k_time, lo, hi, (6,))
        time = jnp.clip(jnp.round(TIME_MEAN + TIME_SD * z), TIME_LO, TIME_HI)
        amount = jnp.maximum(
            jnp.round(AMOUNT_MEAN + AMOUNT_SD * jax.random.normal(k_amount, (6,))), 0
        )
        return DailyMeals(time, amount, taken)

    return jax.vmap(_day)(jax.random.split(key, days))


def meal_minutes(meals: DailyMeals) -> Float[Array, " minutes"]:
    """Grams announced at each minute (``days * 1440``), the scenario's input to the simulator."""
    days = meals.time.shape[0]
    earlier = jnp.tril(jnp.ones((6, 6), bool), -1)  # earlier[j, i]: meal i comes before meal j
    clash = (meals.time[:, :, None] == meals.time[:, None, :]) & meals.taken[:, None, :] & earlier
    keep = meals.taken & ~clash.any(-1)
    at = (jnp.arange(days)[:, None] * MINUTES_PER_DAY + meals.time).astype(jnp.int32)
    grams = jnp.where(keep, meals.amount, 0.0)
    return jnp.zeros(days * MINUTES_PER_DAY, grams.dtype).at[at.reshape(-1)].add(grams.reshape(-1))


def random_scenario(key: Key[Array, ""], days: int) -> Float[Array, " minutes"]:
    """Grams announced at each minute of ``days`` random days (``meal_minutes(random_meals)``).

    Example:
        >>> meals = random_scenario(jax.random.key(0), 2)
        >>> meals.shape, bool((meals >= 0).all())
        ((2880,), True)
    """
    return meal_minutes(random_meals(key, days))
