"""The closed loop as simglucose's ``T1DSimEnv`` runs it: patient, sensor, pump and controller.

Every sensor period of ``s`` minutes (3 for the Dexcom sensor) the controller sees the previous
period's report, the mean sensor value and the mean announced carbohydrate rate, and chooses basal
and bolus rates held for the next ``s`` minutes; the pump discretizes them. The sensor reads at
multiples of ``s`` minutes and holds its reading in between, so the reported mean over minutes
``t+1..t+s`` is ``((s - 1) reading(t) + reading(t + s)) / s``. The first report (time 0) carries
no meal, so the first period has no bolus.
"""

from collections.abc import Callable
from typing import NamedTuple

import jax
import jax.numpy as jnp
from jaxtyping import Array, ArrayLike, Float, Key

from twinjax.physiology.controller import Action, basal_bolus
from twinjax.physiology.params import ClinicalSettings, PatientParams
from twinjax.physiology.pump import Pump
from twinjax.physiology.sensor import Sensor, cgm_noise, measure
from twinjax.physiology.uva_padova import (
    SUBSTEPS,
    PatientState,
    glucose,
    initial_state,
    minute_step,
    unpack,
)

Policy = Callable[[Float[Array, ""], Float[Array, ""]], Action]  # (cgm, meal rate) -> action


class Trace(NamedTuple):
    """One closed-loop run. Minute arrays have ``minutes`` entries; period arrays one per period."""

    bg: Float[Array, " minutes"]  # glucose after each minute (mg/dL, noise-free)
    insulin: Float[Array, " minutes"]  # insulin delivered at each minute (U/min)
    cgm: Float[Array, " periods"]  # the sensor reading at the end of each period (mg/dL)
    reported_cgm: Float[Array, " periods"]  # the mean reading the controller saw next
    carbs: Float[Array, " periods"]  # grams announced in each period
    bolus: Float[Array, " periods"]  # bolus delivered in each period (U)
    cgm0: Float[Array, ""]  # the reading at time 0
    policy_state: object = None  # a stateful controller's state at the end (else None)


def run(
    p: PatientParams,
    meals: Float[ArrayLike, " minutes"],
    noise: Float[ArrayLike, " readings"],
    policy: Policy,
    *,
    sensor: Sensor,
    pump: Pump | None,
    state: PatientState | None = None,
    substeps: int = SUBSTEPS,
    policy_state=None,
    compat: str = "simglucose",
) -> Trace:
    """Runs one patient in closed loop.

    Args:
        p: the patient's parameters (unbatched).
        meals: grams announced at each minute; a whole number of sensor periods.
        noise: sensor noise for the reading at time 0 and at the end of each period
            (``1 + minutes / sample_time`` values; zeros for a noise-free sensor).
        policy: the controller, ``(reported cgm, announced meal rate) -> Action``.
        sensor: the sensor (its period and range).
        pump: the pump discretizing the requested rates, or None to deliver them exactly.
        state: the starting state (default: :func:`initial_state`).
        substeps: RK4 steps per minute.
        policy_state: for a controller with a state (e.g. a twin it carries forward): its
            initial state (a pytree); then ``policy`` is ``(state, cgm, meal rate) ->
            (state, Action)``.
        compat: the patient's meal bookkeeping, as which simglucose
            (:data:`~twinjax.physiology.uva_padova.COMPAT`).

    Returns:
        The :class:`Trace`.
    """
    s = sensor.sample_time
    meals = jnp.asarray(meals, p.x0.dtype)
    noise = jnp.asarray(noise, p.x0.dtype)
    if meals.shape[0] % s:
        raise ValueError(f"{meals.shape[0]} minutes is not a whole number of {s}-minute periods")
    periods = meals.shape[0] // s
    if noise.shape[0] != periods + 1:
        raise ValueError(f"noise needs {periods + 1} values (1 + periods), got {noise.shape[0]}")
    state = initial_state(p) if state is None else state
    deliver = (lambda r, kind: r) if pump is None else (lambda r, kind: getattr(pump, kind)(r))
    cgm0 = measure(glucose(state.x, p), noise[0], sensor)
    q = unpack(p.theta)

    def _minute(st, inputs):
        st = minute_step(st, *inputs, q, substeps=substeps, compat=compat)
        return st, st.x[12] / q["Vg"]

    def _step(carry, inputs):
        st, held, reported, meal_rate, ps = carry
        window, eps = inputs
        if policy_state is None:
            action = policy(reported, meal_rate)
        else:
            ps, action = policy(ps, reported, meal_rate)
        basal, bolus = deliver(action.basal, "basal"), deliver(action.bolus, "bolus")
        rate = jnp.broadcast_to(basal + bolus, (s,))
        st, bg = jax.lax.scan(_minute, st, (window, rate))
        reading = measure(bg[-1], eps, sensor)
        reported = ((s - 1) * held + reading) / s
        meal_rate = window.sum() / s
        out = (bg, rate, reading, reported, window.sum(), bolus * s)
        return (st, reading, reported, meal_rate, ps), out

    zero = jnp.zeros((), p.x0.dtype)
    carry = (state, cgm0, cgm0, zero, policy_state)
    (*_, ps), (bg, rate, cgm, reported, carbs, bolus) = jax.lax.scan(
        _step, carry, (meals.reshape(periods, s), noise[1:])
    )
    return Trace(bg.reshape(-1), rate.reshape(-1), cgm, reported, carbs, bolus, cgm0, ps)


def run_basal_bolus(
    key: Key[Array, ""] | None,
    p: PatientParams,
    settings: ClinicalSettings,
    meals: Float[ArrayLike, " minutes"],
    *,
    sensor: Sensor,
    pump: Pump | None,
    target: float = 140.0,
    substeps: int = SUBSTEPS,
    compat: str = "simglucose",
) -> Trace:
    """One patient under simglucose's ``BBController`` (its clinical settings) on ``meals``.

    ``key`` draws the sensor noise; ``key=None`` gives a noise-free sensor (the validation
    setting). Unbatched: ``jax.vmap`` over keys, patients and meal scenarios.
    """
    periods = jnp.shape(meals)[0] // sensor.sample_time
    if key is None:
        noise = jnp.zeros(periods + 1, p.x0.dtype)
    else:
        noise = cgm_noise(key, sensor, periods + 1).astype(p.x0.dtype)

    def policy(cgm, meal_rate):
        return basal_bolus(
            cgm, meal_rate, p, settings, sample_time=sensor.sample_time, target=target
        )

    return run(p, meals, noise, policy, sensor=sensor, pump=pump, substeps=substeps,
               compat=compat)  # fmt: skip
