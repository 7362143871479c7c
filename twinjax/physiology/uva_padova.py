"""The UVa/Padova type-1 diabetes model (Dalla Man et al. 2007, 2014) as simglucose 0.2.11 runs it.

Thirteen compartments (:data:`~twinjax.physiology.params.STATE_NAMES`): carbohydrate in the
stomach (solid, liquid) and gut, plasma and tissue glucose, plasma insulin, insulin action on
utilization and (delayed twice) on production, liver insulin, two subcutaneous insulin depots and
subcutaneous glucose. The observed "blood glucose" is subcutaneous glucose ``Gs / Vg`` (mg/dL).

Inputs are piecewise constant over each minute, as in simglucose: a meal announced at minute ``t``
(grams) is eaten at 5 g/min; insulin is a rate in U/min. Gastric emptying ``kgut`` depends on the
amount of the current meal ``Dbar`` (stomach content when eating started plus what has been eaten
since, the grams eaten converted to mg: simglucose's issue 41, a sum of grams and milligrams, is
fixed in the 0.2.11 matched here, ``t1dpatient.py``'s ``Dbar = last_Qsto + last_foodtaken *
1000``; ``compat="simglucose<0.2.3"`` runs the sum as simglucose computed it before 0.2.3),
which changes only at minute boundaries. Within a minute the ODE is integrated by
``substeps`` classical Runge-Kutta steps (:func:`twinjax.mechanistic.ode.rk4`); simglucose uses
scipy's adaptive dopri5 per minute. The fastest rate in the 30 patients is ``kabs`` = 1.23/min,
so RK4 at 1/4 min is well inside its stability region (|h lambda| = 0.31 << 2.78). Against
simglucose's glucose (``scripts/bench_glucose.py validate``: 24 h of basal-bolus control with
six meals, all 30 patients, float32) the difference shrinks from 1 to 2 to 4 substeps, where it
reaches float32's floor; so 4 is the default (``validate`` writes the figures for each count).

One patient is the unit (``simulate`` is unbatched, a ``lax.scan`` over minutes); cohorts and
scenarios are ``jax.vmap`` over its arguments.
"""

from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, ArrayLike, Float

from twinjax.mechanistic.ode import rk4
from twinjax.physiology.params import PARAM_NAMES, PatientParams

EAT_RATE = 5.0  # g/min, simglucose's T1DPatient.EAT_RATE
U_TO_PMOL = 6000.0  # pmol per unit of insulin
SUBSTEPS = 4  # RK4 steps per minute (see the module docstring and the validation table)
# which simglucose's meal bookkeeping to run: "simglucose" (0.2.3 and later, the 0.2.11 validated
# here: Dbar = last_Qsto + food_taken * 1000, all in mg) or "simglucose<0.2.3" (its issue 41:
# Dbar = last_Qsto + food_taken, milligrams plus grams, so a meal's own amount barely counts)
COMPAT = ("simglucose", "simglucose<0.2.3")

_P = {name: i for i, name in enumerate(PARAM_NAMES)}


class PatientState(NamedTuple):
    """The patient between minutes: the ODE state plus simglucose's meal bookkeeping."""

    x: Float[Array, "13"]  # compartments (mg/kg, pmol/kg, ...; see STATE_NAMES)
    last_qsto: Float[Array, ""]  # stomach content when the current meal started (mg)
    food_taken: Float[Array, ""]  # grams eaten since the current meal started
    planned: Float[Array, ""]  # grams announced but not yet eaten
    last_eaten: Float[Array, ""]  # grams eaten in the previous minute


def initial_state(p: PatientParams) -> PatientState:
    """The patient at rest: simglucose's default initial state, nothing announced or eaten."""
    zero = jnp.zeros((), p.x0.dtype)
    return PatientState(p.x0, p.x0[0] + p.x0[1], zero, zero, zero)


def glucose(x: Float[ArrayLike, "*batch 13"], p: PatientParams) -> Float[Array, "*batch"]:
    """Subcutaneous glucose ``Gs / Vg`` (mg/dL), what simglucose calls blood glucose (BG)."""
    return jnp.asarray(x)[..., 12] / p.theta[..., _P["Vg"]]


def unpack(theta: Float[ArrayLike, " params"]) -> dict:
    """The parameters by name, plus the linear part of the ODE (``A``, ``c``: see
    :func:`dynamics`), computed once per simulation rather than in every RK4 stage."""
    q = {name: theta[i] for name, i in _P.items()}
    g = q.__getitem__
    entries = [  # (row, column, coefficient) of dx/dt = A x + ...
        (0, 0, -g("kmax")), (1, 0, g("kmax")), (2, 2, -g("kabs")),
        (3, 2, g("f") * g("kabs") / g("BW")), (3, 3, -g("k1")), (3, 4, g("k2")),
        (4, 3, g("k1")), (4, 4, -g("k2")),
        (5, 5, -(g("m2") + g("m4"))), (5, 9, g("m1")), (5, 10, g("ka1")), (5, 11, g("ka2")),
        (6, 6, -g("p2u")), (6, 5, g("p2u") / g("Vi")),
        (7, 7, -g("ki")), (7, 5, g("ki") / g("Vi")), (8, 8, -g("ki")), (8, 7, g("ki")),
        (9, 9, -(g("m1") + g("m30"))), (9, 5, g("m2")),
        (10, 10, -(g("ka1") + g("kd"))), (11, 10, g("kd")), (11, 11, -g("ka2")),
        (12, 3, g("ksc")), (12, 12, -g("ksc")),
    ]  # fmt: skip
    rows, cols, vals = zip(*entries, strict=True)
    place = np.zeros((len(vals), 13 * 13), np.float32)  # one-hot positions: a dot, not a scatter
    place[np.arange(len(vals)), np.array(rows) * 13 + np.array(cols)] = 1.0
    a = (jnp.stack(vals) @ jnp.asarray(place, theta.dtype)).reshape(13, 13)
    c = jnp.zeros(13, theta.dtype).at[3].set(-g("Fsnc")).at[6].set(-g("p2u") * g("Ib"))
    return q | {"A": a, "c": c}


# Where the nonlinear terms and inputs enter dx/dt: columns are gastric emptying kgut * Qsto2,
# net production max(EGP, 0) - renal excretion, insulin-dependent uptake, carbs, insulin.
_B = np.zeros((13, 5), np.float32)
_B[1, 0], _B[2, 0], _B[3, 1], _B[4, 2], _B[0, 3], _B[10, 4] = -1, 1, 1, -1, 1, 1
# simglucose freezes these compartments once negative (its (x >= 0) * dxdt guards)
_GUARDED = np.array([0, 0, 0, 1, 1, 1, 0, 0, 0, 1, 1, 1, 1], bool)


def dynamics(x, carbs_mg, insulin_pmol, dbar, q: dict):
    """The right-hand side ``dx/dt`` (per minute) for constant inputs over the minute.

    ``dx/dt = A x + c + B v(x)``: most of the model is linear (the matrix ``A`` and constant
    ``c`` from :func:`unpack`); ``v`` holds the nonlinear fluxes (gastric emptying with its
    meal-size-dependent rate, endogenous production floored at 0 minus renal excretion above
    the threshold ``ke2``, Michaelis-Menten uptake) and the inputs. Written this way the RK4
    stage is a few vector operations, which XLA compiles in a fraction of the time of one
    scalar expression per compartment.

    Args:
        x: the 13 compartments.
        carbs_mg: carbohydrate ingestion rate (mg/min).
        insulin_pmol: subcutaneous insulin rate (pmol/kg/min).
        dbar: the current meal's amount (mg), 0 before any meal.
        q: the patient's parameters by name and the linear part (:func:`unpack`).
    """
    g = q.__getitem__
    kmax, kmin, b, d = g("kmax"), g("kmin"), g("b"), g("d")
    qsto = x[0] + x[1]
    meal = dbar > 0
    safe = jnp.where(meal, dbar, 1.0)  # keeps the unused branch (and its gradient) finite
    aa = 5.0 / (2.0 * safe * (1.0 - b))
    cc = 5.0 / (2.0 * safe * d)
    shape = jnp.tanh(aa * (qsto - b * safe)) - jnp.tanh(cc * (qsto - d * safe)) + 2.0
    kgut = jnp.where(meal, kmin + (kmax - kmin) / 2.0 * shape, kmax)
    egp = g("kp1") - g("kp2") * x[3] - g("kp3") * x[8]
    renal = jnp.where(x[3] > g("ke2"), g("ke1") * (x[3] - g("ke2")), 0.0)
    uid = (g("Vm0") + g("Vmx") * x[6]) * x[4] / (g("Km0") + x[4])
    v = jnp.stack([kgut * x[1], jnp.maximum(egp, 0.0) - renal, uid, carbs_mg, insulin_pmol])
    dx = g("A") @ x + g("c") + jnp.asarray(_B, x.dtype) @ v
    return jnp.where(_GUARDED & (x < 0), 0.0, dx)


def eat(state: PatientState, meal: Float[ArrayLike, ""]) -> PatientState:
    """The start of a minute: ``meal`` grams announced, then this minute's eating (at most
    5 g/min of what is still to be eaten) and the current meal's amount ``Dbar``'s bookkeeping.

    ``last_eaten`` becomes this minute's grams; the compartments are unchanged.
    """
    planned = state.planned + meal
    eaten = jnp.where(planned > 0, jnp.minimum(EAT_RATE, planned), 0.0)
    planned = jnp.maximum(planned - eaten, 0.0)
    starts = (eaten > 0) & (state.last_eaten <= 0)
    last_qsto = jnp.where(starts, state.x[0] + state.x[1], state.last_qsto)
    food_taken = jnp.where(starts, 0.0, state.food_taken) + eaten
    return PatientState(state.x, last_qsto, food_taken, planned, eaten)


def minute_dynamics(state: PatientState, insulin: Float[ArrayLike, ""], q: dict,
                    compat: str = "simglucose"):  # fmt: skip
    """``dx/dt`` of the compartments during a minute after :func:`eat`: the grams eaten this
    minute at a constant rate, ``insulin`` (U/min), the current meal's amount (``compat``:
    :data:`COMPAT`)."""
    dbar = state.last_qsto + state.food_taken * _food_unit(compat)
    insulin_pmol = insulin * U_TO_PMOL / q["BW"]
    return dynamics(state.x, state.last_eaten * 1000.0, insulin_pmol, dbar, q)


def _food_unit(compat: str) -> float:
    """mg per unit of ``food_taken`` in ``Dbar``: 1000 (grams, converted) or, as simglucose
    before 0.2.3 computed it, 1."""
    if compat not in COMPAT:
        raise ValueError(f"compat must be one of {COMPAT}, not {compat!r}")
    return 1000.0 if compat == "simglucose" else 1.0


def minute_step(
    state: PatientState,
    meal: Float[ArrayLike, ""],
    insulin: Float[ArrayLike, ""],
    q: dict,
    *,
    substeps: int = SUBSTEPS,
    compat: str = "simglucose",
) -> PatientState:
    """One minute of simglucose's ``T1DPatient.step``: meal bookkeeping, then the ODE.

    Args:
        state: the patient now.
        meal: grams announced this minute (added to what is still to be eaten).
        insulin: insulin rate this minute (U/min).
        q: the patient's parameters by name (:func:`unpack` of ``PatientParams.theta``).
        substeps: RK4 steps within the minute.
        compat: the meal bookkeeping of which simglucose (:data:`COMPAT`).

    Returns:
        The patient one minute later.
    """
    state = eat(state, meal)
    f = lambda t, y, _: minute_dynamics(state._replace(x=y), insulin, q, compat)
    return state._replace(x=rk4(f, state.x, 0.0, 1.0, substeps))


def simulate(
    p: PatientParams,
    meals: Float[ArrayLike, " minutes"],
    insulin: Float[ArrayLike, " minutes"],
    *,
    state: PatientState | None = None,
    substeps: int = SUBSTEPS,
    compat: str = "simglucose",
) -> tuple[Float[Array, " minutes"], PatientState]:
    """Open loop: glucose after each minute given the meals announced and insulin delivered.

    Args:
        p: one patient's parameters (unbatched; ``jax.vmap`` for a cohort).
        meals: grams announced at each minute (eaten at 5 g/min).
        insulin: insulin rate at each minute (U/min).
        state: the starting state (default: :func:`initial_state`).
        substeps: RK4 steps per minute.
        compat: the meal bookkeeping of which simglucose (:data:`COMPAT`).

    Returns:
        ``(bg, final_state)``: ``bg[t]`` is glucose (mg/dL) at the end of minute ``t``.

    Example:
        >>> import jax.numpy as jnp
        >>> from twinjax.physiology import load_patients
        >>> p = jax.tree.map(lambda a: a[0], load_patients(["adult#001"]))
        >>> basal = p.get("u2ss") * p.get("BW") / 6000.0  # the steady-state basal rate, U/min
        >>> bg, _ = simulate(p, jnp.zeros(60), jnp.full(60, basal))
        >>> bool(jnp.abs(bg - glucose(p.x0, p)).max() < 0.01)  # at rest on basal: steady
        True
    """
    state = initial_state(p) if state is None else state
    dtype = p.x0.dtype
    meals, insulin = jnp.asarray(meals, dtype), jnp.asarray(insulin, dtype)
    q = unpack(p.theta)

    def _step(s, inputs):
        s = minute_step(s, *inputs, q, substeps=substeps, compat=compat)
        return s, s.x[12] / q["Vg"]

    final, bg = jax.lax.scan(_step, state, (meals, insulin))
    return bg, final
