"""Counterfactual replay: a patient's held-out days again, under an altered therapy.

ReplayBG's question (Cappon et al., IEEE TBME 2023): with the same meals, what would glucose have
been had the therapy been different? A replay here is simglucose's closed loop
(:func:`twinjax.physiology.closed_loop.run`) from a model's state at the start of the held-out
days, with

- the recorded meals (grams per minute as the records hold them) and the same sensor-noise
  sequence for every model, so every difference between two replays is the model's;
- the patient's basal-bolus controller (``BBController``: carb ratio and correction factor, the
  clinic's settings) acting on the model's own CGM, with the recorded basal rate, altered by a
  :class:`Therapy`.

The state at the start of the held-out days is each model's own: its starting state run open
loop through the recorded inputs of the training days
(:func:`~twinjax.glucose.records.run_records`). The outcomes are those of
:mod:`twinjax.physiology.outcomes` and the mean, on the noise-free glucose at the readings.
The same code replays the true parameters (the outcome simglucose would give, as the JAX
simulator matches simglucose 0.2.11 to 0.003 mg/dL) and each draw of a twin.
"""

from functools import partial
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, ArrayLike, Float

from twinjax.glucose.records import run_records
from twinjax.physiology.closed_loop import run
from twinjax.physiology.controller import Action, basal_bolus
from twinjax.physiology.outcomes import outcomes
from twinjax.physiology.params import ClinicalSettings, PatientParams, patient_names
from twinjax.physiology.pump import Pump
from twinjax.physiology.sensor import Sensor, cgm_noise
from twinjax.physiology.uva_padova import PatientState

MINUTES_PER_DAY = 1440
OUTCOMES = ("tir", "below70", "below54", "above180", "mean")


class Therapy(NamedTuple):
    """An alteration of the basal-bolus therapy (fields are arrays so therapies ``vmap``).

    bolus_scale: every bolus (meal and correction) times this.
    basal_scale: the basal rate times this.
    missed: 1 to skip the first meal bolus of each day (0: none skipped).
    delay: minutes from the bolus to the meal (the bolus stays at the announced time).
    """

    bolus_scale: Float[ArrayLike, "*therapies"]
    basal_scale: Float[ArrayLike, "*therapies"]
    missed: Float[ArrayLike, "*therapies"]
    delay: Float[ArrayLike, "*therapies"]


def therapy(bolus_scale=1.0, basal_scale=1.0, missed=0, delay=0) -> Therapy:
    """One :class:`Therapy` (the default: the recorded one); NumPy values, so that building
    :data:`THERAPIES` at import starts no JAX backend."""
    return Therapy(*(np.float32(v) for v in (bolus_scale, basal_scale, missed, delay)))


THERAPIES = {
    "recorded": therapy(),
    "bolus x0.7": therapy(bolus_scale=0.7),
    "bolus x1.3": therapy(bolus_scale=1.3),
    "basal x0.8": therapy(basal_scale=0.8),
    "basal x1.2": therapy(basal_scale=1.2),
    "missed bolus": therapy(missed=1),
    "meal +30 min": therapy(delay=30),
}


def stack(therapies: dict[str, Therapy]) -> Therapy:
    """The therapies as one :class:`Therapy` with a leading axis (in dict order)."""
    return jax.tree.map(lambda *a: np.stack(a), *therapies.values())


def _delayed(meals: Float[Array, " minutes"], delay) -> Float[Array, " minutes"]:
    """``meals`` eaten ``delay`` minutes later (those pushed past the end are dropped)."""
    t = jnp.arange(meals.shape[0])
    src = (t - delay).astype(jnp.int32)
    return jnp.where(src >= 0, meals[jnp.clip(src, 0)], 0.0)


def replay(
    theta: Float[Array, " params"],
    state: PatientState,
    meals: Float[Array, " minutes"],
    noise: Float[Array, " readings"],
    settings: ClinicalSettings,
    basal: Float[Array, ""],
    th: Therapy,
    *,
    sensor: Sensor,
    pump: Pump | None,
    substeps: int = 1,
) -> Float[Array, " periods"]:
    """Glucose (mg/dL, noise-free) at the end of each sensor period of one closed-loop replay.

    Args:
        theta: the model's parameters (one patient, one draw).
        state: its state at the start of the replay (the final state of
            :func:`~twinjax.glucose.records.run_records`).
        meals: grams announced at each minute (the recorded meals of the replayed days).
        noise: sensor noise at time 0 and at the end of each period.
        settings: the controller's carb ratio and correction factor.
        basal: the recorded basal rate (U/min).
        th: the therapy (unbatched).
        sensor, pump: as in :func:`~twinjax.physiology.closed_loop.run`.
        substeps: RK4 steps per minute.
    """
    s = sensor.sample_time
    p = PatientParams(theta, state.x)
    # the controller sees the meal of the previous period as announced (run's convention),
    # whenever the meal is eaten
    announced = jnp.concatenate([jnp.zeros(1), meals.reshape(-1, s).sum(-1)[:-1] / s])
    per_day = MINUTES_PER_DAY // s

    def policy(ps, cgm, _eaten_rate):
        k, skipped_day = ps
        meal = announced[k]
        bolus = basal_bolus(cgm, meal, p, settings, sample_time=s).bolus * th.bolus_scale
        day = k // per_day
        skip = (th.missed > 0) & (meal > 0) & (skipped_day != day)
        bolus = jnp.where(skip, 0.0, bolus)
        skipped_day = jnp.where(skip, day, skipped_day)
        return (k + 1, skipped_day), Action(basal * th.basal_scale, bolus)

    trace = run(p, _delayed(meals, th.delay), noise, policy, sensor=sensor, pump=pump,
                state=state, substeps=substeps, policy_state=(jnp.int32(0), jnp.int32(-1)))  # fmt: skip
    return trace.bg[s - 1 :: s]


def replay_outcomes(bg: Float[ArrayLike, "*batch readings"]) -> dict[str, Array]:
    """:data:`OUTCOMES` of glucose traces: time in 70-180, below 70, below 54, above 180
    (fractions) and the mean (mg/dL)."""
    bg = jnp.asarray(bg)
    o = outcomes(bg)
    return {"tir": o.tir, "below70": o.below70, "below54": o.below54,
            "above180": o.above180, "mean": jnp.mean(bg, -1)}  # fmt: skip


@partial(jax.jit, static_argnames=("step", "train_minutes", "sensor", "pump", "substeps"))
def replay_draws(
    theta: Float[Array, "draws params"],
    x0: Float[Array, "draws 13"],
    carbs: Float[Array, " minutes"],
    insulin: Float[Array, " minutes"],
    noise: Float[Array, " readings"],
    settings: ClinicalSettings,
    basal: Float[Array, ""],
    therapies: Therapy,
    *,
    step: int,
    train_minutes: int,
    sensor: Sensor,
    pump: Pump | None,
    substeps: int = 1,
) -> dict[str, Float[Array, "therapies draws"]]:
    """Outcomes of one patient's held-out days under each therapy, for each parameter draw.

    Each draw runs open loop through the recorded inputs of the first ``train_minutes`` minutes
    (``carbs``/``insulin`` cover the whole record), then replays the rest in closed loop under
    every therapy of the stacked ``therapies`` with the sensor ``noise`` of the held-out readings
    (one value at the replay's start and one per period).
    """
    states = jax.vmap(
        lambda t, x: run_records(
            t, x, carbs[:train_minutes], insulin[:train_minutes], step=step, substeps=substeps
        )[0]
    )(theta, x0)
    meals = carbs[train_minutes:]

    def one(t, st, th):
        bg = replay(t, st, meals, noise, settings, basal, th, sensor=sensor, pump=pump,
                    substeps=substeps)  # fmt: skip
        return replay_outcomes(bg)

    per_draw = jax.vmap(one, in_axes=(0, 0, None))
    return jax.vmap(per_draw, in_axes=(None, None, 0))(theta, states, therapies)


def cohort_noise(key, names, days: int, sensor: Sensor) -> np.ndarray:
    """``[patients, readings]``: the sensor noise :func:`~twinjax.physiology.simulate_cohort`
    drew for ``names`` with ``key`` (patient ``i``'s from its table position, as it does)."""
    n = days * MINUTES_PER_DAY // sensor.sample_time + 1
    ids = [patient_names().index(name) for name in names]
    keys = [jax.random.split(jax.random.fold_in(key, i))[1] for i in ids]
    return np.stack([np.asarray(cgm_noise(k, sensor, n)) for k in keys])


def first_patients(per_group: int) -> list[str]:
    """The first ``per_group`` patients of each age group in table order (the glucose_twins
    experiment's choice, groups alphabetical)."""
    names = patient_names()
    groups = sorted({n.split("#")[0] for n in names})
    return [n for g in groups for n in [m for m in names if m.split("#")[0] == g][:per_group]]


def replay_cohort(
    theta: Float[Array, "patients draws params"],
    x0: Float[Array, "patients draws 13"],
    carbs: Float[np.ndarray, "patients minutes"],
    insulin: Float[np.ndarray, "patients minutes"],
    noise: Float[np.ndarray, "patients readings"],
    settings: ClinicalSettings,
    basal: Float[np.ndarray, " patients"],
    therapies: Therapy,
    **opts,
) -> dict[str, np.ndarray]:
    """:func:`replay_draws` for each patient (a loop: one patient's draws and therapies at a
    time bound memory); ``[patients, therapies, draws]`` per outcome."""
    per = []
    for i in range(theta.shape[0]):
        s_i = jax.tree.map(lambda a, i=i: a[i], settings)
        out = replay_draws(jnp.asarray(theta[i]), jnp.asarray(x0[i]), jnp.asarray(carbs[i]),
                           jnp.asarray(insulin[i]), jnp.asarray(noise[i]), s_i,
                           jnp.asarray(basal[i]), therapies, **opts)  # fmt: skip
        per.append({k: np.asarray(v) for k, v in out.items()})
    return {k: np.stack([p[k] for p in per]) for k in OUTCOMES}
