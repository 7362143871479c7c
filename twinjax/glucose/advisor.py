"""The bolus advisor: the meal dose that maximizes the twin's expected time in range, safe first.

At a meal the twin (posterior draws of the patient's UVa/Padova parameters, each with its own
current state, which carries the insulin still on board and the carbohydrates still to be eaten)
is simulated ``horizon`` minutes ahead on the clinic's basal, with the bolus delivered over the
next sensor period and no further meals. The dose maximizes

    mean_draws TIR~(dose) - penalty * max(0, Q_q[TBR~(dose)] - max_below)

    - penalty * max(0, Q_q[TBR54~(dose)] - max_below54)

where ``TIR~``, ``TBR~`` and ``TBR54~`` are the fractions of the horizon in 70-180 mg/dL, below 70
and below 54 with the indicators replaced by logistic ramps of width ``width`` mg/dL (so the
objective has a gradient; the ramp also leaves a margin: at 75 mg/dL a minute counts 0.12
towards ``TBR~``), and ``Q_q`` is the ``q`` quantile over the draws: chance constraints asking
that in at least a fraction ``q`` of the plausible patients the time below 70 stay under
``max_below`` and the time below 54 under ``max_below54``. The search is on the log of the dose
relative to the clinic's carb-ratio dose (where it starts), by ``optax.adam``, within
``[clinic / max_factor, clinic * max_increase]``; the best iterate (clinic dose included) is
kept, chosen by the exact indicators on the same draws (both chance constraints first, then the
expected time in range), so under the twin the advice is never worse than the clinic's dose.

Safe first. A twin can be confidently wrong (the identified twins' posteriors are too narrow),
so the advice leaves the clinic's dose only where the twin can promise the constraints:

- no dose in the range meets both chance constraints at the exact indicators (the twin expects
  hypoglycaemia whatever the bolus, so its promise is worthless): the advice *defers*;
- the controller also defers when the twin has been tracking the patient badly: the RMS of the
  CGM residual over the last hours (:class:`~twinjax.glucose.closed_loop.Tracker`) above
  ``max_residual`` mg/dL;
- by default the advice only cuts the clinic's dose (``max_increase`` 1; cuts go down to
  ``1 / max_factor``): a wrong twin then errs towards too little insulin, which costs time above
  180, not a hypo. Twins identified on two days of records can be confidently wrong by tens of
  percent in insulin sensitivity, and an increase they promised safe then drives a child
  below 54 (``scripts/advisor_safety.py`` compares the caps; the README has the figures).

A deferred advice is the clinic's dose, flagged (``Advice.deferred``) and counted per patient in
the closed loop's outcomes. The dose is one number, so
its derivative is taken in forward mode (``jax.jvp``: one pass with tangents, no stored
residuals), about half the cost of reverse mode here.

The horizon is 8 hours because subcutaneous insulin acts that long in this model: with a 5-hour
horizon the advisor doubled adult#001's dose for a 70 g meal (15.3 U vs the clinic's 7), which
the twin scored as 85% in range, and the same twin went to 60 mg/dL 9 hours after the meal; at
8 hours it chose 8.6 U and stayed above 96. No later meal is assumed, which errs on the side of
less insulin. ``max_below`` is 0.01 (about 5 minutes of the horizon), not 0: the logistic ramp
is never exactly 0, so with 0 the penalty acts on every minute near 80-90 mg/dL and the advisor
gave lower doses than the clinic's with exact twins (time in range 0.93 vs 0.94 for adult#001
in the JAX loop, 0.975 with 0.01).

The horizon simulation uses one RK4 substep per minute (``substeps=1``): the 30-patient
validation in :mod:`twinjax.physiology.uva_padova` puts its largest RMS error at 0.02 mg/dL,
far below the twin's own uncertainty, and it is 4x cheaper than the default 4.
"""

from dataclasses import dataclass
from typing import NamedTuple

import jax
import jax.numpy as jnp
import optax
from jaxtyping import Array, ArrayLike, Bool, Float

from twinjax.physiology import PatientParams, PatientState, simulate
from twinjax.physiology.outcomes import HIGH, LOW, VERY_LOW


@dataclass(frozen=True)
class Advisor:
    """The advisor's options (hashable: a static argument of the jitted :func:`advise`)."""

    horizon: int = 480  # minutes simulated after the meal (see the module docstring)
    steps: int = 15  # optimizer steps
    learning_rate: float = 0.2  # Adam's step on the log dose
    width: float = 2.5  # mg/dL, the logistic ramps' scale
    quantile: float = 0.9  # the chance constraints' level over the draws
    max_below: float = 0.01  # the largest time below 70 allowed at that quantile
    max_below54: float = 0.0  # the largest time below 54 allowed at that quantile
    # mg/dL added to both hypoglycaemia thresholds in the constraints (not in the time in range
    # maximized): the twin must keep its draws above 70 + margin and 54 + margin
    margin: float = 0.0
    penalty: float = 20.0  # weight of a constraint's violation
    max_factor: float = 4.0  # the dose stays above clinic / max_factor
    max_increase: float = 1.0  # ... and below clinic * max_increase (1: cuts only)
    # the controller defers to the clinic's dose when the RMS of its CGM residual (mg/dL, over
    # the last hours) is above this (None: never on that ground)
    max_residual: float | None = 25.0
    substeps: int = 1  # RK4 steps per minute in the horizon simulation

    def __post_init__(self):
        if (self.horizon < 1 or self.steps < 0 or self.width <= 0 or self.max_factor < 1
                or self.max_increase < 1 or min(self.max_below, self.max_below54, self.margin) < 0
                or (self.max_residual is not None and self.max_residual <= 0)):  # fmt: skip
            raise ValueError(f"invalid advisor options: {self}")
        if not 0.0 < self.quantile <= 1.0:
            raise ValueError(f"quantile must be in (0, 1], got {self.quantile}")


class Advice(NamedTuple):
    """The advised and the clinic's dose (U), each with the twin's predicted outcomes over the
    horizon (exact indicators): expected time in range, and the ``quantile`` over the draws of
    the time below 70; ``deferred``: the twin could not promise the chance constraints, so the
    dose is the clinic's."""

    dose: Float[Array, ""]
    clinic_dose: Float[Array, ""]
    tir: Float[Array, ""]
    clinic_tir: Float[Array, ""]
    below: Float[Array, ""]
    clinic_below: Float[Array, ""]
    deferred: Bool[Array, ""]


def _horizon_glucose(dose, draws, state, basal, sample_time: int, adv: Advisor):
    """Glucose ``[draws, horizon]`` after a bolus of ``dose`` U over the next period."""
    t = jnp.arange(adv.horizon)
    insulin = basal + jnp.where(t < sample_time, dose / sample_time, 0.0)
    meals = jnp.zeros(adv.horizon, insulin.dtype)
    one = lambda p, s: simulate(p, meals, insulin, state=s, substeps=adv.substeps)[0]
    return jax.vmap(one)(draws, state)


def _smooth(bg, adv: Advisor):
    """Per draw: the smoothed time in range, below 70 and below 54 over the horizon."""
    ramp = lambda z: jax.nn.sigmoid(z / adv.width)
    tir = jnp.mean(ramp(bg - LOW) * ramp(HIGH - bg), -1)
    m = adv.margin
    return tir, jnp.mean(ramp(LOW + m - bg), -1), jnp.mean(ramp(VERY_LOW + m - bg), -1)


def _predicted(bg, adv: Advisor):
    """The expected time in range and the ``quantile`` of the time below 70 and below 54 (each
    threshold raised by ``margin``)."""
    tir = jnp.mean((bg >= LOW) & (bg <= HIGH), -1).mean()
    q = lambda below: jnp.quantile(jnp.mean(below, -1), adv.quantile)
    return tir, q(bg < LOW + adv.margin), q(bg < VERY_LOW + adv.margin)


def advise(
    draws: PatientParams,
    state: PatientState,
    *,
    basal: Float[ArrayLike, ""],
    clinic_dose: Float[ArrayLike, ""],
    sample_time: int,
    advisor: Advisor = Advisor(),
) -> Advice:
    """The bolus (U) for the meal now, by gradient steps through the twin's draws.

    Args:
        draws: the twin's parameter draws (leading ``draws`` axis).
        state: each draw's state now (leading ``draws`` axis), with the meal announced.
        basal: the basal rate (U/min) held over the horizon.
        clinic_dose: the carb-ratio (plus correction) dose the search starts from (U).
        sample_time: minutes over which the bolus is delivered (the sensor period).
        advisor: the options.

    Returns:
        The :class:`Advice`. Pure; jit with ``sample_time`` and ``advisor`` static
        (:func:`advise_jit`).
    """
    basal = jnp.asarray(basal, draws.theta.dtype)
    base = jnp.maximum(jnp.asarray(clinic_dose, basal.dtype), 1e-3)
    bound = jnp.log(advisor.max_factor)
    glucose_of = lambda z: _horizon_glucose(base * jnp.exp(z), draws, state, basal, sample_time,
                                            advisor)  # fmt: skip

    def evaluate(z):
        """The smoothed objective to descend, and the exact score the best dose is chosen by."""
        bg = glucose_of(z)
        tir, below, severe = _smooth(bg, advisor)
        excess = jnp.quantile(below, advisor.quantile) - advisor.max_below
        excess54 = jnp.quantile(severe, advisor.quantile) - advisor.max_below54
        loss = -(tir.mean() - advisor.penalty * (jax.nn.relu(excess) + jax.nn.relu(excess54)))
        return loss, _score(*_predicted(jax.lax.stop_gradient(bg), advisor), loss, advisor)

    opt = optax.adam(advisor.learning_rate)

    def _step(carry, _):
        z, opt_state, best_z, best = carry
        # d loss / d log dose in forward mode (the score's tangent is 0)
        (_, score), (g, _) = jax.jvp(evaluate, (z,), (jnp.ones_like(z),))
        better = score > best
        best_z, best = jnp.where(better, z, best_z), jnp.where(better, score, best)
        updates, opt_state = opt.update(g, opt_state)
        z = jnp.clip(optax.apply_updates(z, updates), -bound, jnp.log(advisor.max_increase))
        return (z, opt_state, best_z, best), None

    z0 = jnp.zeros((), basal.dtype)
    carry = (z0, opt.init(z0), z0, jnp.asarray(-jnp.inf, basal.dtype))
    (z, _, best_z, best), _ = jax.lax.scan(_step, carry, None, length=advisor.steps)
    best_z = jnp.where(evaluate(z)[1] > best, z, best_z)  # the last iterate is a candidate too
    tir, below, severe = _predicted(glucose_of(best_z), advisor)
    clinic_tir, clinic_below, _ = _predicted(glucose_of(z0), advisor)
    deferred = ~_feasible(below, severe, advisor)  # no dose searched meets the constraints
    best_z = jnp.where(deferred, z0, best_z)
    tir, below = jnp.where(deferred, clinic_tir, tir), jnp.where(deferred, clinic_below, below)
    clinic = jnp.asarray(clinic_dose, basal.dtype)
    dose = jnp.where(deferred, clinic, base * jnp.exp(best_z))
    return Advice(dose, clinic, tir, clinic_tir, below, clinic_below, deferred)


def _feasible(below, severe, adv: Advisor):
    return (below <= adv.max_below) & (severe <= adv.max_below54)


def _score(tir, below, severe, loss, adv: Advisor):
    """Higher is better: doses meeting both exact chance constraints first, by expected time in
    range; the others by their time below 70 and (ten times heavier) below 54; ties (time in
    range moves by 1/horizon) go to the smoothed objective."""
    return jnp.where(_feasible(below, severe, adv), 1.0 + tir, -below - 10 * severe) - 1e-4 * loss


advise_jit = jax.jit(advise, static_argnames=("sample_time", "advisor"))
