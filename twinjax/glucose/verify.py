"""The twin advisor verified in simglucose: advisor vs ``BBController`` on the same held-out days.

For each patient, :func:`run_closed_loop` draws the held-out meal days with
:func:`~twinjax.physiology.random_scenario` (key ``fold_in(meal key, the patient's table row)``,
so a patient's days do not depend on which others are run) and one sensor seed, and runs
simglucose itself (its patient, Dexcom sensor and Insulet pump; optional extra ``glucose``)
twice on them: with :class:`~twinjax.glucose.closed_loop.TwinAdvisorController` and
with simglucose's ``BBController``. Patients run in parallel processes; each patient's
per-minute traces are written to ``out_dir/traces/<patient>.npz`` as it finishes (written whole,
then renamed), and a rerun skips the patients whose file is there, after checking that it was
made with the same twin, days and options. simglucose takes about 15-20 s per patient-day on one
core, so each patient-day costs twice that plus the advisor's calls.
"""

import hashlib
import logging
import multiprocessing
import time
from concurrent.futures import ProcessPoolExecutor, as_completed
from pathlib import Path

import jax
import numpy as np
import pandas as pd
from jaxtyping import Array, Key

from twinjax.glucose.advisor import Advisor
from twinjax.glucose.twin import MechanisticTwin
from twinjax.physiology import outcomes, patient_names, random_scenario
from twinjax.physiology.params import age_group
from twinjax.runtime.files import replacing
from twinjax.runtime.progress import progress

log = logging.getLogger(__name__)
CONTROLLERS = ("twin", "bb")  # the advisor, simglucose's BBController


def _fingerprint(job: dict) -> str:
    """What a patient's result depends on: twin draws, days, sensor seed and options."""
    h = hashlib.sha256()
    for k in ("name", "seed", "sensor", "pump", "tau", "tau_flux", "advisor"):
        h.update(repr(job[k]).encode())
    for k in ("theta", "x0", "meals"):
        h.update(np.ascontiguousarray(job[k], np.float64).tobytes())
    return h.hexdigest()


def _patient(job: dict) -> str:
    """Both controllers on one patient's days in simglucose; writes the traces file."""
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # gym and pkg_resources import-time deprecations
        from twinjax.glucose.closed_loop import TwinAdvisorController
        from twinjax.physiology.reference import simglucose_bb

    theta, x0 = jax.numpy.asarray(job["theta"][None]), jax.numpy.asarray(job["x0"][None])
    twin = MechanisticTwin(theta, x0, jax.numpy.ones(x0.shape[:2]), (job["name"],), ())
    ctl = TwinAdvisorController(twin, job["name"], sensor=job["sensor"], pump=job["pump"],
                                advisor=job["advisor"], tau=job["tau"], tau_flux=job["tau_flux"])  # fmt: skip
    kw = dict(sensor=job["sensor"], pump=job["pump"], noise_free=False, seed=job["seed"])
    runs = {"twin": simglucose_bb(job["name"], job["meals"], controller=ctl, **kw)}
    advice, advice_seconds, compile_seconds = ctl.advice, ctl.advice_seconds, ctl.compile_seconds
    runs["bb"] = simglucose_bb(job["name"], job["meals"], **kw)
    arrays = {f"{k}_{c}": getattr(r, k) for c, r in runs.items() for k in ("bg", "insulin", "cgm")}
    arrays |= {f"seconds_{c}": r.seconds for c, r in runs.items()}
    fields = ("dose", "clinic_dose", "tir", "clinic_tir", "below", "clinic_below", "deferred")
    arrays |= {
        "advice_minute": np.array([m for m, _ in advice], int),
        "advice_seconds": np.array(advice_seconds),
        "compile_seconds": compile_seconds,
    }
    arrays |= {f"advice_{f}": np.array([getattr(a, f) for _, a in advice]) for f in fields}
    with replacing(Path(job["path"])) as tmp:  # whole or not at all
        np.savez(tmp, meals=job["meals"], fingerprint=job["fingerprint"], **arrays)
    return job["name"]


def patient_outcomes(path: Path) -> list[dict]:
    """One row per controller of a patient's traces file: outcomes of the per-minute glucose,
    and for the advisor the meals it was asked about and the doses it deferred to the clinic."""
    data = np.load(path)
    name = Path(path).stem
    rows = []
    for c in CONTROLLERS:
        o = outcomes(data[f"bg_{c}"])
        asked = c == "twin" and "advice_dose" in data
        deferred = c == "twin" and "advice_deferred" in data
        rows.append({"patient": name, "group": age_group(name), "controller": c,
                     **{k: float(v) for k, v in o._asdict().items()},
                     "seconds": float(data[f"seconds_{c}"]),
                     "advised": int(len(data["advice_dose"])) if asked else np.nan,
                     "deferred": int(data["advice_deferred"].sum()) if deferred else np.nan})  # fmt: skip
    return rows


def plan(twin: MechanisticTwin, names, days: int, key: Key[Array, ""], out_dir, *,
         advisor: Advisor, tau: float, tau_flux: float | None, sensor: str, pump: str,
         draws: int | None = None) -> list[dict]:  # fmt: skip
    """One job per patient: its twin draws, held-out meals, sensor seed, options and file."""
    names = [names] if isinstance(names, str) else list(names)
    missing = [n for n in names if n not in twin.subject_ids]
    if missing or days < 1:
        raise ValueError(f"patients {missing} are not in the twin" if missing else "days < 1")
    traces = Path(out_dir) / "traces"
    traces.mkdir(parents=True, exist_ok=True)
    k_meals, k_sensor = jax.random.split(key)
    table, jobs = patient_names(), []
    for name in names:
        row, i = table.index(name), twin.subject_ids.index(name)
        seed = int(jax.random.randint(jax.random.fold_in(k_sensor, row), (), 0, 2**31 - 1))
        job = dict(name=name, seed=seed, sensor=sensor, pump=pump, tau=tau, tau_flux=tau_flux,
                   advisor=advisor,
                   theta=np.asarray(twin.theta[i, :draws]), x0=np.asarray(twin.x0[i, :draws]),
                   meals=np.asarray(random_scenario(jax.random.fold_in(k_meals, row), days)),
                   path=str(traces / f"{name}.npz"))  # fmt: skip
        jobs.append(job | {"fingerprint": _fingerprint(job)})
    return jobs


def _finished(job: dict) -> bool:
    """Whether the patient's traces file is there (made from the same job: else an error)."""
    if not Path(job["path"]).exists():
        return False
    if str(np.load(job["path"])["fingerprint"]) != job["fingerprint"]:
        raise ValueError(f"{job['path']} was made with another twin, days or options; "
                         "remove it or use another out_dir")  # fmt: skip
    return True


def run_closed_loop(
    twin: MechanisticTwin,
    names,
    days: int,
    key: Key[Array, ""],
    out_dir,
    *,
    processes: int = 2,
    advisor: Advisor | None = None,
    tau: float = 30.0,
    tau_flux: float | None = 60.0,
    sensor: str = "Dexcom",
    pump: str = "Insulet",
    draws: int | None = 16,
    show_progress: bool = True,
) -> pd.DataFrame:
    """Advisor vs ``BBController`` in simglucose for ``names`` (patients of ``twin``).

    Args:
        twin: the twins (any :class:`MechanisticTwin` holding ``names``).
        names: the patients to run.
        days: held-out days per patient.
        key: the held-out key (meals and sensor noise); not the one the twin's records came from.
        out_dir: where ``traces/<patient>.npz`` and ``outcomes.csv`` go.
        processes: parallel processes (1: in this process).
        advisor, tau, tau_flux: the advisor's options and the observer's time constants
            (:func:`~twinjax.glucose.closed_loop.twin_controller`).
        sensor, pump: simglucose's device names.
        draws: the advisor uses each patient's first ``draws`` posterior draws (None: all);
            its cost grows with them (per meal, 8-h horizon: 0.37 s CPU at 16, 1.1 s at 64).
        show_progress: a progress bar (log lines when not on a terminal).

    Returns:
        One row per patient and controller (``twin`` or ``bb``): ``tir``, ``below70``,
        ``below54``, ``above180``, ``lbgi``, ``hbgi`` of the per-minute glucose, and simglucose's
        ``seconds``; also written to ``out_dir/outcomes.csv``.
    """
    advisor = Advisor() if advisor is None else advisor
    jobs = plan(twin, names, days, key, out_dir, advisor=advisor, tau=tau, tau_flux=tau_flux,
                sensor=sensor, pump=pump, draws=draws)  # fmt: skip
    done = [j["name"] for j in jobs if _finished(j)]
    jobs = [j for j in jobs if j["name"] not in done]
    traces = Path(out_dir) / "traces"
    if done:
        log.info("closed loop: %d patient(s) already done in %s", len(done), traces)
    bar = progress(
        len(done) + len(jobs), initial=len(done), desc="closed loop", enabled=show_progress
    )
    tic = time.perf_counter()
    if processes <= 1:
        for job in jobs:
            _patient(job)
            bar.update()
    else:
        ctx = multiprocessing.get_context("spawn")  # JAX is not fork-safe
        with ProcessPoolExecutor(processes, mp_context=ctx) as pool:
            futures = {pool.submit(_patient, job): job["name"] for job in jobs}
            for f in as_completed(futures):
                f.result()  # a failure stops the run; finished patients stay on disk
                bar.update()
    bar.close()
    log.info("closed loop: %d patient(s) x %d day(s) in %.0f s", len(jobs), days,
             time.perf_counter() - tic)  # fmt: skip
    names = [names] if isinstance(names, str) else list(names)
    rows = [r for name in names for r in patient_outcomes(traces / f"{name}.npz")]
    table_out = pd.DataFrame(rows)
    with replacing(Path(out_dir) / "outcomes.csv") as tmp:
        table_out.to_csv(tmp, index=False)
    return table_out


def outcomes_by_group(table: pd.DataFrame) -> pd.DataFrame:
    """Mean outcomes per age group (and ``all``) and controller."""
    metrics = ["tir", "below70", "below54", "above180", "lbgi", "hbgi"]
    groups = [table, table.assign(group="all")]
    return pd.concat(groups).groupby(["group", "controller"])[metrics].mean()


def plot_closed_loop(path, *, ax=None):
    """Glucose under the advisor and ``BBController`` for one patient's traces file, with the
    meals (grams) and the boluses (U) each gave. Returns the figure."""
    import matplotlib.pyplot as plt

    data = np.load(path)
    if ax is None:
        fig, ax = plt.subplots(2, 1, figsize=(10, 5.5), sharex=True, height_ratios=[3, 1])
    fig = ax[0].figure
    hours = (np.arange(len(data["bg_twin"])) + 1) / 60.0
    ax[0].axhspan(70, 180, color="0.92", label="70-180 mg/dL")
    for c, label, color in (("twin", "twin advisor", "C0"), ("bb", "BBController", "C1")):
        ax[0].plot(hours, data[f"bg_{c}"], color=color, lw=1.2, label=label)
        excess = data[f"insulin_{c}"] - np.min(data[f"insulin_{c}"])  # U/min above basal
        per_period = excess.reshape(-1, 3).sum(1)  # U per 3-minute sensor period
        at = np.flatnonzero(per_period > 1e-3)
        shift = -0.05 if c == "twin" else 0.05
        ax[1].bar(at * 0.05 + shift, per_period[at], width=0.1, color=color, label=f"{label} bolus")
    meals = np.flatnonzero(data["meals"])
    for t in meals:
        ax[0].axvline(t / 60.0, color="0.6", lw=0.6, ls=":")
        ax[0].annotate(f"{data['meals'][t]:.0f} g", (t / 60.0, ax[0].get_ylim()[1]),
                       fontsize=7, ha="left", va="top")  # fmt: skip
    ax[0].set_ylabel("glucose (mg/dL)")
    ax[1].set_ylabel("bolus (U)")
    ax[1].set_xlabel("hours")
    ax[0].set_title(f"{Path(path).stem}: closed loop in simglucose")
    ax[0].legend(fontsize=8, loc="upper right")
    ax[1].legend(fontsize=7, loc="upper right")
    fig.tight_layout()
    return fig
