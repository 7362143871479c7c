"""A virtual type-1 diabetes cohort: days of CGM, meals and insulin from the JAX simulator.

Each patient lives ``days`` days of simglucose-style random meals under its clinical settings
(the basal-bolus controller with its carb ratio and correction factor), with a noisy CGM and a
discretizing pump. The records are a :class:`twinjax.data.Cohort` on the sensor's grid
(``step`` = its period in minutes, times in minutes from the start at midnight):

* value ``cgm`` at cell ``t`` is the reading at minute ``t * step`` (cell 0: the first reading);
* interventions at cell ``t`` are what was given during minutes ``[t * step, (t + 1) * step)``:
  ``carbs`` (g announced), ``bolus`` and ``basal`` (U delivered);
* static covariates: age, body weight and the settings (``CR``, ``CF``, ``TDI``) and the age
  group (one-hot, written back as a categorical column);
* ``truth`` is the noise-free glucose at the reading times (for scoring, never for fitting).

:func:`write_cohort` writes it as long-format Parquet through :func:`twinjax.data.to_long`, so
``python -m twinjax data=files data.observations=DIR/observations.parquet ...`` reads it back;
the true patient parameters go to ``parameters.parquet`` and the noise-free glucose to
``glucose_truth.parquet`` for scorers.
"""

from functools import partial
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import pandas as pd
from jaxtyping import Array, Key

from twinjax.data import Cohort, to_long
from twinjax.physiology.closed_loop import run_basal_bolus
from twinjax.physiology.params import (
    PARAM_NAMES,
    age_group,
    load_patients,
    load_settings,
    patient_names,
)
from twinjax.physiology.pump import Pump
from twinjax.physiology.scenario import random_scenario
from twinjax.physiology.sensor import Sensor
from twinjax.physiology.uva_padova import SUBSTEPS
from twinjax.runtime.files import replacing

GROUPS = ("adolescent", "adult", "child")
KINDS = ("carbs", "bolus", "basal")


def simulate_cohort(
    key: Key[Array, ""],
    names=None,
    days: int = 14,
    *,
    sensor: Sensor | None = None,
    pump: Pump | None = None,
    substeps: int = SUBSTEPS,
    compat: str = "simglucose",
) -> Cohort:
    """``days`` days of every patient in ``names`` (default: all 30), one vmapped simulation.

    Patient ``i``'s meals and sensor noise come from ``fold_in(key, i)`` (its table position),
    so a patient's records do not depend on which others are simulated with it
    (``tests/physiology/test_cohort.py`` runs it; a doctest would compile the loop again).
    ``compat`` picks the meal bookkeeping of which simglucose
    (:data:`~twinjax.physiology.uva_padova.COMPAT`).
    """
    names = list(patient_names() if names is None else names)
    sensor = sensor or Sensor.named("Dexcom")
    pump = pump or Pump.named("Insulet")
    p, st = load_patients(names), load_settings(names)
    ids = jnp.asarray([patient_names().index(n) for n in names])
    trace, truth, insulin = _simulate(
        key, ids, p, st, days=days, sensor=sensor, pump=pump, substeps=substeps, compat=compat
    )
    return _as_cohort(names, trace, truth, insulin, p, st, float(sensor.sample_time))


# jitted once at module level: a jax.jit of a closure made in each call compiled the day-long
# simulation again at every call with the same shapes
@partial(jax.jit, static_argnames=("days", "sensor", "pump", "substeps", "compat"))
def _simulate(key, ids, p, st, *, days, sensor, pump, substeps, compat):
    def one(i, pi, si):
        k_meal, k_noise = jax.random.split(jax.random.fold_in(key, i))
        meals = random_scenario(k_meal, days)
        trace = run_basal_bolus(k_noise, pi, si, meals, sensor=sensor, pump=pump,
                                substeps=substeps, compat=compat)  # fmt: skip
        s = sensor.sample_time
        truth = trace.bg[s - 1 :: s]
        return trace, truth, trace.insulin.reshape(-1, s).sum(-1)

    return jax.vmap(one)(ids, p, st)


def _as_cohort(names, trace, truth, insulin, p, st, step: float) -> Cohort:
    n, periods = trace.cgm.shape
    cgm = np.concatenate([np.asarray(trace.cgm0)[:, None], np.asarray(trace.cgm)], axis=1)
    bg0 = np.asarray(p.x0[:, 12] / p.get("Vg"))[:, None]
    truth = np.concatenate([bg0, np.asarray(truth)], axis=1)
    bolus = np.asarray(trace.bolus)
    pad = lambda a: np.concatenate([a, np.zeros((n, 1))], axis=1)
    itv = np.stack([pad(np.asarray(trace.carbs)), pad(bolus), pad(np.asarray(insulin) - bolus)], -1)
    groups = [age_group(name) for name in names]
    one_hot = np.array([[g == level for level in GROUPS] for g in groups], np.float32)
    numeric = np.stack(
        [st.age, p.get("BW"), st.carb_ratio, st.correction_factor, st.total_daily_insulin], -1
    )
    return Cohort(
        values=cgm[..., None].astype(np.float32),
        mask=np.ones((n, periods + 1, 1), bool),
        interventions=itv.astype(np.float32),
        static=np.concatenate([np.asarray(numeric), one_hot], axis=1).astype(np.float32),
        lengths=np.full(n, periods + 1, np.int32),
        subject_ids=tuple(names),
        variables=("cgm",),
        intervention_kinds=KINDS,
        static_names=("age", "BW", "CR", "CF", "TDI") + tuple(f"age_group={g}" for g in GROUPS),
        t0=np.zeros(n),
        step=step,
        truth=truth[..., None].astype(np.float32),
        meta={"static_levels": {"age_group": list(GROUPS)}, "time": {"kind": "number"}},
    )


def write_cohort(cohort: Cohort, out_dir: str | Path) -> dict[str, Path]:
    """Writes ``observations``, ``interventions``, ``static`` (the twin's inputs) and
    ``glucose_truth``, ``parameters`` (for scoring) as Parquet files in ``out_dir``."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    obs, itv, static = to_long(cohort)
    truth = obs.drop(columns="value").assign(variable="bg", value=cohort.truth[cohort.mask])
    names = list(cohort.subject_ids)
    p = load_patients(names)
    params = pd.DataFrame(np.asarray(p.theta), columns=list(PARAM_NAMES))
    params.insert(0, "subject_id", names)
    paths = {name: out / f"{name}.parquet" for name in
             ("observations", "interventions", "static", "glucose_truth", "parameters")}  # fmt: skip
    for name, table in zip(paths, (obs, itv, static, truth, params), strict=True):
        with replacing(paths[name]) as tmp:  # whole or not at all
            table.to_parquet(tmp, index=False)
    return paths
