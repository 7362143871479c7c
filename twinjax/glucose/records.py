"""What a glucose twin reads from a cohort, and the open-loop path it predicts through it.

A :class:`Records` holds one cohort's CGM, carbohydrates and insulin per minute (the inputs a
simulation needs) and body weight. The cohort (:func:`twinjax.physiology.simulate_cohort`) keeps
what happened in each sensor period ``[t s, (t + 1) s)`` minutes: the grams announced, placed here
at the period's middle minute (the minute within the period is not recorded, so the twin's meal
is at most ``s // 2`` minutes off), and the insulin delivered, spread evenly over the period
(exact: the pump holds its rate for the whole period). Reading ``t`` is glucose at minute ``t s``.

:func:`glucose_path` runs one parameter draw through the records with fixed-step RK4 and returns
glucose at every reading. Run with the recorded future inputs, the same path is every origin's
forecast: the state at origin ``o`` is the path's state there, and rolling on 60 minutes with the
recorded inputs is the path itself, so one scan per draw serves every origin.
"""

from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, Float

from twinjax.data import Cohort
from twinjax.physiology import PARAM_NAMES
from twinjax.physiology.uva_padova import PatientState, minute_step, unpack

_P = {name: i for i, name in enumerate(PARAM_NAMES)}


class Records(NamedTuple):
    """A cohort's records as simulation inputs (``minutes = (cells - 1) * step``)."""

    cgm: Float[np.ndarray, "patients cells"]  # mg/dL
    carbs: Float[np.ndarray, "patients minutes"]  # grams announced at each minute
    insulin: Float[np.ndarray, "patients minutes"]  # U/min delivered at each minute
    basal: Float[np.ndarray, " patients"]  # the first period's insulin rate, U/min
    bw: Float[np.ndarray, " patients"]  # body weight, kg (a static covariate)
    step: float  # minutes per cell (a whole number)
    subject_ids: tuple[str, ...]

    def cells(self, days: float) -> int:
        """Cells of the first ``days`` days (their readings and the one at the end)."""
        return int(round(days * 1440 / self.step)) + 1

    def take(self, rows) -> "Records":
        """The records of the patients ``rows`` (indices)."""
        rows = np.atleast_1d(np.asarray(rows))
        pick = lambda a: np.asarray(a)[rows]
        return self._replace(cgm=pick(self.cgm), carbs=pick(self.carbs), insulin=pick(self.insulin),
                             basal=pick(self.basal), bw=pick(self.bw),
                             subject_ids=tuple(self.subject_ids[int(r)] for r in rows))  # fmt: skip

    def head(self, days: float) -> "Records":
        """The first ``days`` days."""
        c = self.cells(days)
        if c > self.cgm.shape[1]:
            raise ValueError(f"{days} days is more than the {self.cgm.shape[1]} cells recorded")
        m = (c - 1) * int(self.step)
        return self._replace(
            cgm=self.cgm[:, :c], carbs=self.carbs[:, :m], insulin=self.insulin[:, :m]
        )


def records(cohort: Cohort) -> Records:
    """The simulation inputs of a glucose cohort (CGM, ``carbs``/``bolus``/``basal``, ``BW``)."""
    kinds = tuple(cohort.intervention_kinds or ())
    missing = {"carbs", "bolus", "basal"} - set(kinds)
    if missing or "BW" not in cohort.static_names or "cgm" not in cohort.variables:
        raise ValueError(
            "a glucose cohort needs CGM values, carbs/bolus/basal interventions and a BW static "
            f"covariate (simulate_cohort's layout); missing {sorted(missing)} of {kinds}, "
            f"statics {cohort.static_names}, variables {cohort.variables}"
        )
    step = int(round(cohort.step))
    if step < 1 or abs(cohort.step - step) > 1e-6 or not bool(np.all(cohort.mask)):
        raise ValueError("glucose records need a whole-minute step and no missing readings")
    cgm = np.asarray(cohort.values[..., cohort.variables.index("cgm")], np.float32)
    itv = np.asarray(cohort.interventions, np.float32)[:, :-1]  # the last cell has no period
    n, periods = itv.shape[:2]
    carbs = np.zeros((n, periods, step), np.float32)
    carbs[:, :, step // 2] = itv[..., kinds.index("carbs")]
    dose = itv[..., kinds.index("bolus")] + itv[..., kinds.index("basal")]
    insulin = np.repeat(dose / step, step, axis=1)
    bw = np.asarray(cohort.static[:, cohort.static_names.index("BW")], np.float32)
    return Records(cgm, carbs.reshape(n, -1), insulin, insulin[:, 0], bw, float(step),
                   tuple(cohort.subject_ids))  # fmt: skip


def plasma_insulin(theta: Float[Array, " params"], basal: Float[Array, ""]) -> Float[Array, ""]:
    """Steady plasma insulin (pmol/L) under a constant rate ``basal`` (U/min): the subcutaneous
    depots pass the whole rate to plasma whatever ``kd``/``ka1``/``ka2``, and the liver returns
    ``m1 m2 / (m1 + m30)`` of what it takes up."""
    g = lambda k: theta[_P[k]]
    rate = basal * 6000.0 / g("BW")  # pmol/kg/min
    clearance = g("m2") + g("m4") - g("m1") * g("m2") / (g("m1") + g("m30"))
    return rate / clearance / g("Vi")


def steady_state(theta: Float[Array, " params"], basal: Float[Array, ""]) -> Float[Array, "13"]:
    """The fasting state under a constant insulin rate ``basal`` (U/min), with ``theta``'s ``Ib``
    taken as that state's plasma insulin (so insulin action ``X`` is 0 there).

    Glucose solves ``EGP(Gp) = Fsnc + E(Gp) + Uid(Gt)`` with ``k1 Gp - k2 Gt = Uid(Gt)``, a
    monotone equation in ``Gt``: bisection finds the root and a Newton step from it carries the
    gradient (the implicit-function derivative) to the parameters.

    Example:
        >>> from twinjax.physiology import load_patients
        >>> p = jax.tree.map(lambda a: a[0], load_patients(["adult#001"]))
        >>> basal = p.get("u2ss") * p.get("BW") / 6000.0  # simglucose's basal rate, U/min
        >>> bool(jnp.allclose(steady_state(p.theta, basal), p.x0, rtol=1e-4))  # the table's x0
        True
    """
    g = lambda k: theta[_P[k]]
    ib = plasma_insulin(theta, basal)
    uid = lambda gt: g("Vm0") * gt / (g("Km0") + gt)
    gp_of = lambda gt: (g("k2") * gt + uid(gt)) / g("k1")

    def excess(gt):  # production minus use at the tissue glucose gt, decreasing in gt
        gp = gp_of(gt)
        egp = jnp.maximum(g("kp1") - g("kp2") * gp - g("kp3") * ib, 0.0)
        renal = jnp.where(gp > g("ke2"), g("ke1") * (gp - g("ke2")), 0.0)
        return egp - g("Fsnc") - renal - uid(gt)

    def _bisect(_, bounds):
        lo, hi = bounds
        mid = 0.5 * (lo + hi)
        up = excess(mid) > 0
        return jnp.where(up, mid, lo), jnp.where(up, hi, mid)

    lo, hi = jax.lax.fori_loop(0, 40, _bisect, (jnp.zeros_like(ib), jnp.full_like(ib, 2000.0)))
    gt = jax.lax.stop_gradient(0.5 * (lo + hi))
    gt = gt - excess(gt) / jax.lax.stop_gradient(jax.grad(excess)(gt))
    gp = gp_of(gt)
    ip = ib * g("Vi")
    il = g("m2") * ip / (g("m1") + g("m30"))
    isc1 = basal * 6000.0 / g("BW") / (g("ka1") + g("kd"))
    isc2 = g("kd") * isc1 / g("ka2")
    zero = jnp.zeros_like(gp)
    return jnp.stack([zero, zero, zero, gp, gt, ip, zero, ib, ib, il, isc1, isc2, gp])


def with_basal_insulin(theta: Float[Array, " params"], basal: Float[Array, ""]) -> Array:
    """``theta`` with ``Ib`` set to the steady plasma insulin under ``basal`` (U/min)."""
    return theta.at[_P["Ib"]].set(plasma_insulin(theta, basal))


def glucose_path(
    theta: Float[Array, " params"],
    x0: Float[Array, "13"],
    carbs: Float[Array, " minutes"],
    insulin: Float[Array, " minutes"],
    *,
    step: int,
    substeps: int = 1,
) -> Float[Array, " cells"]:
    """Glucose (mg/dL) at every reading (``minutes / step + 1``) of one draw, from ``x0``."""
    _, bg = run_records(theta, x0, carbs, insulin, step=step, substeps=substeps)
    return jnp.concatenate([(x0[12] / unpack(theta)["Vg"])[None], bg])


def run_records(
    theta: Float[Array, " params"],
    x0: Float[Array, "13"],
    carbs: Float[Array, " minutes"],
    insulin: Float[Array, " minutes"],
    *,
    step: int,
    substeps: int = 1,
) -> tuple[PatientState, Float[Array, " periods"]]:
    """One draw run open loop through ``carbs``/``insulin`` (per minute) from the fasting state
    ``x0``: its final state and the glucose (mg/dL) at the end of each ``step``-minute period."""
    q = unpack(theta)
    zero = jnp.zeros((), x0.dtype)
    state = PatientState(x0, x0[0] + x0[1], zero, zero, zero)

    def _minute(s, inputs):
        return minute_step(s, inputs[0], inputs[1], q, substeps=substeps), None

    def _step(s, inputs):  # one reading's period: a scan over its minutes (compiles faster
        s, _ = jax.lax.scan(_minute, s, inputs)  # and ran faster here than unrolling them)
        return s, s.x[12] / q["Vg"]

    per_cell = jnp.stack([carbs.reshape(-1, step), insulin.reshape(-1, step)], -1)
    return jax.lax.scan(_step, state, per_cell)
