"""Commuting: departure time and mode (car, transit, bike) by multinomial logit, day after day.

Each agent ``i`` picks one of ``3 x n_slots`` (mode, departure slot) alternatives with utility

    U[i, m, d] = asc[i, m] - vot[i] * time[i, m, d] - cost_sens[i] * cost[m, d]
                 - early_late[i] * |d - preferred[i]| + Gumbel noise

where the expected times come from the agents' memory of past days (an exponential moving
average of the realized congestion). Realized car times follow the BPR link function of the car
flow in each slot, transit times add half the headway and a crowding factor that grows with the
load per vehicle, bike times are fixed per km. Levers: transit frequency and a congestion price
on car trips in the peak slots.
"""

from typing import NamedTuple

import jax
import jax.numpy as jnp
from jaxtyping import Array, Float, Int, PRNGKeyArray

CAR, TRANSIT, BIKE = 0, 1, 2
MODES = ("car", "transit", "bike")
INCOME_GROUPS = ("low", "middle", "high")


class Commuters(NamedTuple):
    distance_km: Float[Array, " n"]
    vot: Float[Array, " n"]  # value of time, money per minute
    cost_sens: Float[Array, " n"]  # utility per unit of money
    asc: Float[Array, "n 3"]  # mode preferences
    preferred: Int[Array, " n"]  # preferred departure slot
    early_late: Float[Array, " n"]  # utility per slot of schedule delay
    income: Int[Array, " n"]


class CityParams(NamedTuple):
    n_slots: int = 6
    car_min_per_km: float = 1.5
    transit_min_per_km: float = 2.2
    bike_min_per_km: float = 4.0
    road_capacity: float = 0.12  # car trips per slot, as a fraction of the population
    transit_frequency: float = 4.0  # vehicles per slot (slot = 30 min)
    vehicle_capacity: float = 0.02  # passengers per vehicle, fraction of the population
    crowding: float = 0.6
    car_cost_per_km: float = 0.25
    fare: float = 2.5
    congestion_price: float = 0.0
    peak_slots: tuple = (2, 3)
    learning_rate: float = 0.3
    choice_scale: float = 1.0


class CommuteState(NamedTuple):
    car_factor: Float[Array, " slots"]  # remembered congestion multiplier per slot
    transit_factor: Float[Array, " slots"]  # remembered crowding multiplier per slot
    day: Int[Array, ""]


class DayOutput(NamedTuple):
    mode: Int[Array, " n"]
    slot: Int[Array, " n"]
    minutes: Float[Array, " n"]
    money: Float[Array, " n"]
    logsum: Float[Array, " n"]  # expected max utility (consumer surplus up to a constant)


def synthetic_commuters(key: PRNGKeyArray, n: int, n_slots: int = 6) -> Commuters:
    """Incomes in three groups; higher income: higher value of time, lower cost sensitivity."""
    ks = jax.random.split(key, 6)
    income = jax.random.categorical(ks[0], jnp.log(jnp.array([0.3, 0.45, 0.25])), shape=(n,))
    wage = jnp.array([0.15, 0.3, 0.6])[income]  # money per minute
    vot = wage * jnp.exp(0.3 * jax.random.normal(ks[1], (n,)))
    cost_sens = 1.0 / (jnp.array([0.6, 1.0, 1.8])[income])
    asc = jnp.array([0.5, 0.0, -0.5]) + 0.8 * jax.random.normal(ks[2], (n, 3))
    dist = jnp.exp(jnp.log(8.0) + 0.6 * jax.random.normal(ks[3], (n,)))
    preferred = jax.random.choice(
        ks[4], n_slots, (n,), p=jnp.array([0.05, 0.15, 0.3, 0.3, 0.15, 0.05])
    )
    early_late = 0.3 + 0.2 * jax.random.uniform(ks[5], (n,))
    return Commuters(dist, vot, cost_sens, asc, preferred, early_late, income.astype(jnp.int32))


def init(city: CityParams) -> CommuteState:
    return CommuteState(jnp.ones(city.n_slots), jnp.ones(city.n_slots), jnp.int32(0))


def _times(c: Commuters, city: CityParams, car_factor, transit_factor):
    """Minutes per (agent, mode, slot) given congestion/crowding multipliers per slot."""
    wait = 30.0 / city.transit_frequency / 2  # half the headway
    car = c.distance_km[:, None] * city.car_min_per_km * car_factor[None, :]
    transit = c.distance_km[:, None] * city.transit_min_per_km * transit_factor[None, :] + wait
    bike = jnp.broadcast_to(c.distance_km[:, None] * city.bike_min_per_km, car.shape)
    return jnp.stack([car, transit, bike], axis=1)  # [n, 3, slots]


def _costs(c: Commuters, city: CityParams):
    slots = jnp.arange(city.n_slots)
    peak = jnp.isin(slots, jnp.array(city.peak_slots))
    car = c.distance_km[:, None] * city.car_cost_per_km + city.congestion_price * peak[None, :]
    transit = jnp.full(car.shape, city.fare)
    return jnp.stack([car, transit, jnp.zeros_like(car)], axis=1)


def utilities(c: Commuters, city: CityParams, state: CommuteState) -> Float[Array, "n 3 slots"]:
    times = _times(c, city, state.car_factor, state.transit_factor)
    delay = jnp.abs(jnp.arange(city.n_slots)[None, :] - c.preferred[:, None])
    return (
        c.asc[:, :, None]
        - c.vot[:, None, None] * times
        - c.cost_sens[:, None, None] * _costs(c, city)
        - (c.early_late[:, None] * delay)[:, None, :]
    ) / city.choice_scale


def realized_factors(city: CityParams, mode, slot, n: int):
    """Congestion (BPR) and crowding multipliers per slot from the day's choices."""
    car_flow = jnp.zeros(city.n_slots).at[slot].add(mode == CAR) / n
    load = jnp.zeros(city.n_slots).at[slot].add(mode == TRANSIT) / n
    car = 1.0 + 0.15 * (car_flow / city.road_capacity) ** 4
    per_vehicle = load / (city.transit_frequency * city.vehicle_capacity)
    transit = 1.0 + city.crowding * per_vehicle**2
    return car, transit


def step(
    state: CommuteState, key: PRNGKeyArray, c: Commuters, city: CityParams
) -> tuple[CommuteState, DayOutput]:
    """One day: choose by logit on remembered times, travel, update the memory."""
    n = c.vot.shape[0]
    u = utilities(c, city, state).reshape(n, -1)
    choice = jax.random.categorical(key, u, axis=-1)
    mode, slot = choice // city.n_slots, choice % city.n_slots
    car_f, transit_f = realized_factors(city, mode, slot, n)
    times = _times(c, city, car_f, transit_f)
    idx = jnp.arange(n)
    minutes = times[idx, mode, slot]
    money = _costs(c, city)[idx, mode, slot]
    lr = city.learning_rate
    new = CommuteState(
        (1 - lr) * state.car_factor + lr * car_f,
        (1 - lr) * state.transit_factor + lr * transit_f,
        state.day + 1,
    )
    logsum = jax.nn.logsumexp(u, axis=-1) * city.choice_scale / c.cost_sens  # money units
    return new, DayOutput(mode.astype(jnp.int32), slot.astype(jnp.int32), minutes, money, logsum)


def simulate(
    key: PRNGKeyArray, c: Commuters, city: CityParams, n_days: int
) -> tuple[CommuteState, DayOutput]:
    body = lambda s, k: step(s, k, c, city)
    return jax.lax.scan(body, init(city), jax.random.split(key, n_days))
