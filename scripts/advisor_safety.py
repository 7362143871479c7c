"""The bolus advisor's safety across virtual cohorts, in the JAX closed loop (issue 26, item 3).

For each cohort seed: simulate the first ``--per-group`` patients of each age group for
``--days`` days of records as ``experiment=glucose_twins`` does (its keys split from the seed the
same way), identify the Bayesian twins on the first ``--fit-days`` days (``--twin``:
:func:`~twinjax.glucose.identification.identify`, the old mechanistic twin by default or the
population twin; saved under ``--out`` and reused when the script runs again), then play
``--loop-days`` held-out days per patient (random meals and Dexcom noise from the seed's
closed-loop key) in the JAX closed loop
(:func:`twinjax.physiology.run`, which matches simglucose to 0.003 mg/dL) under
``BBController`` and under the twin advisor with each of the advisor settings named in
``--advisors`` (:data:`VARIANTS`), the same meals and noise for all.

    PYTHONPATH=. .venv/bin/python scripts/advisor_safety.py --seeds 1 2 3 --out /tmp/safety
    PYTHONPATH=. .venv/bin/python scripts/advisor_safety.py --twin population --seeds 1 \
        --advisors cuts_only increase_1.2 --out /tmp/safety_population

Writes ``outcomes.csv`` (seed, patient, controller: time in range, below 70, below 54, above
180, the advice's deferrals), ``by_group.csv``, ``safety.md`` (per seed and age group, each
advisor against ``BBController``, and the patients with more time below 54) and
``safety.json`` (settings, wall times).
"""

import argparse
import json
import time
from functools import partial
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import pandas as pd

from twinjax.glucose.advisor import Advisor
from twinjax.glucose.closed_loop import twin_controller
from twinjax.glucose.identification import TWINS
from twinjax.glucose.identification import identify as identify_twin
from twinjax.glucose.keys import run_keys
from twinjax.glucose.records import records
from twinjax.glucose.replay import first_patients
from twinjax.glucose.twin import MechanisticTwin
from twinjax.physiology import (
    Pump,
    Sensor,
    cgm_noise,
    load_patients,
    load_settings,
    outcomes,
    random_scenario,
    run,
    run_basal_bolus,
    simulate_cohort,
)
from twinjax.physiology.params import age_group
from twinjax.runtime.compare import markdown

# advisor settings compared (name -> options); "unsafe" is the advisor as it was before the
# safety layer: one chance constraint (below 70), doses up to 4x the clinic's, never deferring
VARIANTS = {
    "unsafe": Advisor(max_below54=1.0, max_increase=4.0, max_residual=None),
    "safe": Advisor(),
    "margin10": Advisor(margin=10.0),
    "margin20": Advisor(margin=20.0),
    "margin20_res15": Advisor(margin=20.0, max_residual=15.0),
    "cuts_only": Advisor(max_increase=1.0),
    "increase_1.2": Advisor(max_increase=1.2),
}
OUTCOME_NAMES = ("tir", "below70", "below54", "above180")


def identify(seed: int, a, out_dir: Path):
    """The seed's cohort names and identified twins (``--twin``; cached in
    ``out_dir/twin_<seed>.npz``, ``twin_<seed>_population.npz`` for the population twin)."""
    keys = run_keys(seed)  # as experiment=glucose_twins splits them
    k_cohort, k_mech, k_loop = keys.cohort, keys.mechanistic, keys.loop
    names = first_patients(a.per_group)
    path = out_dir / (
        f"twin_{seed}.npz" if a.twin == "mechanistic" else f"twin_{seed}_{a.twin}.npz"
    )
    if path.exists():
        z = np.load(path)
        ar = z["noise_ar"] if "noise_ar" in z else None  # (a file saved before it kept none)
        twin = MechanisticTwin(z["theta"], z["x0"], z["noise_sd"], tuple(names), (), ar)
        return names, twin, k_loop, 0.0
    t = time.perf_counter()
    cohort = simulate_cohort(k_cohort, names, a.days)
    twin, _ = identify_twin(k_mech, records(cohort), twin=a.twin, fit_days=a.fit_days,
                            svi_steps=a.svi_steps, starts=a.starts)  # fmt: skip
    ar = {} if twin.noise_ar is None else {"noise_ar": np.asarray(twin.noise_ar)}
    np.savez(path, theta=np.asarray(twin.theta), x0=np.asarray(twin.x0),
             noise_sd=np.asarray(twin.noise_sd), **ar)  # fmt: skip
    return names, twin, k_loop, time.perf_counter() - t


def play(twin, names, k_loop, loop_days: int, variants: dict, draws: int) -> list[dict]:
    """Every patient's held-out days under BBController and each advisor variant."""
    sensor, pump = Sensor.named("Dexcom"), Pump.named("Insulet")
    k_meals, k_sensor = jax.random.split(k_loop)
    thin = twin._replace(theta=twin.theta[:, :draws], x0=twin.x0[:, :draws])
    rows = []
    for i, name in enumerate(names):
        p = jax.tree.map(lambda a: a[0], load_patients([name]))
        settings = jax.tree.map(lambda a: a[0], load_settings([name]))
        meals = random_scenario(jax.random.fold_in(k_meals, i), loop_days)
        k_noise = jax.random.fold_in(k_sensor, i)
        noise = cgm_noise(k_noise, sensor, meals.shape[0] // sensor.sample_time + 1)
        bb = run_basal_bolus(k_noise, p, settings, meals, sensor=sensor, pump=pump)
        runs = {"bb": (bb, None)}
        draws = jax.tree.map(jnp.asarray, thin.patient(i))
        for label, adv in variants.items():
            trace = _advised(draws, p, settings, meals, noise, advisor=adv, sensor=sensor,
                             pump=pump)  # fmt: skip
            runs[label] = (trace, int(trace.policy_state[1]))
        for label, (trace, deferred) in runs.items():
            o = outcomes(trace.bg)
            rows.append({"patient": name, "group": age_group(name), "controller": label,
                         **{k: float(getattr(o, k)) for k in OUTCOME_NAMES},
                         "meals": int(np.count_nonzero(np.asarray(trace.carbs))),
                         "deferred": np.nan if deferred is None else int(deferred)})  # fmt: skip
    return rows


@partial(jax.jit, static_argnames=("advisor", "sensor", "pump"))
def _advised(draws, p, settings, meals, noise, *, advisor, sensor, pump):
    """The loop under the advising controller (the patient's arrays are arguments: one
    compilation serves every patient); its final state counts the meal doses deferred."""
    ctl = twin_controller(draws, p, settings, sample_time=sensor.sample_time, pump=pump,
                          advisor=advisor)  # fmt: skip

    def policy(ps, cgm, meal):
        tracker, count = ps
        tracker, action, advice = ctl.step(tracker, cgm, meal)
        return (tracker, count + (advice.deferred & (meal > 0))), action

    state = (ctl.init(), jnp.int32(0))
    return run(p, meals, noise, policy, sensor=sensor, pump=pump, policy_state=state)


def summarize(table: pd.DataFrame) -> pd.DataFrame:
    both = pd.concat([table, table.assign(group="all")])
    return both.groupby(["seed", "group", "controller"])[[*OUTCOME_NAMES, "deferred"]].mean()


def report(table: pd.DataFrame, variants, a, wall) -> list[str]:
    by = summarize(table)
    lines = ["# The bolus advisor's safety in the JAX closed loop", "",
             f"Seeds {a.seeds}, {a.per_group} patients per age group, {a.twin} twins identified on "
             f"{a.fit_days} of {a.days} record days, {a.loop_days} held-out days per patient, "
             f"{a.draws} posterior draws in the advisor.", ""]  # fmt: skip
    for label in variants:
        rows = []
        for (seed, group), g in by.groupby(level=["seed", "group"]):
            bb, ad = g.xs("bb", level="controller").iloc[0], g.xs(label, level="controller").iloc[0]
            rows.append({"seed": seed, "group": group,
                         "TIR advisor / BB": f"{ad.tir:.3f} / {bb.tir:.3f}",
                         "< 70": f"{ad.below70:.3f} / {bb.below70:.3f}",
                         "< 54": f"{ad.below54:.3f} / {bb.below54:.3f}",
                         "gain >= 0.02": "yes" if ad.tir >= bb.tir + 0.02 else "no",
                         "< 54 not higher": "yes" if ad.below54 <= bb.below54 else "**no**",
                         "deferred": f"{ad.deferred:.1f}"})  # fmt: skip
        wide = table.pivot_table(index=["seed", "patient"], columns="controller",
                                 values="below54")  # fmt: skip
        more54 = [f"{s}:{p}" for (s, p), r in wide.iterrows() if r[label] > r["bb"] + 1e-9]
        lines += [f"## Advisor `{label}`: {variants[label]}", "", markdown(pd.DataFrame(rows)),
                  "", f"Patients with more time below 54 than under BBController: "
                  f"{len(more54)} ({', '.join(more54) or 'none'}).", ""]  # fmt: skip
    lines += ["Wall time (s): " + ", ".join(f"{k} {v:.0f}" for k, v in wall.items())]
    return lines


def main(a) -> pd.DataFrame:
    out_dir = Path(a.out)
    out_dir.mkdir(parents=True, exist_ok=True)
    variants = {k: VARIANTS[k] for k in a.advisors}
    rows, wall = [], {}
    for seed in a.seeds:
        names, twin, k_loop, fit_s = identify(seed, a, out_dir)
        wall[f"identify seed {seed}"] = fit_s
        t = time.perf_counter()
        rows += [r | {"seed": seed} for r in play(twin, names, k_loop, a.loop_days, variants,
                                                   a.draws)]  # fmt: skip
        wall[f"loop seed {seed}"] = time.perf_counter() - t
        table = pd.DataFrame(rows)
        table.to_csv(out_dir / "outcomes.csv", index=False)
        summarize(table).to_csv(out_dir / "by_group.csv")
        (out_dir / "safety.md").write_text("\n".join(report(table, variants, a, wall)) + "\n")
    (out_dir / "safety.json").write_text(json.dumps({"args": vars(a), "wall": wall}, indent=1))
    print((out_dir / "safety.md").read_text())
    return table


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--seeds", type=int, nargs="+", default=[1, 2, 3])
    ap.add_argument("--per-group", type=int, default=3)
    ap.add_argument("--days", type=int, default=7)
    ap.add_argument("--fit-days", type=float, default=2.0)
    ap.add_argument("--twin", choices=TWINS, default="mechanistic", help="the Bayesian twin")
    ap.add_argument("--svi-steps", type=int, default=800, help="mechanistic twin")
    ap.add_argument("--starts", type=int, default=3, help="population twin: mode-search starts")
    ap.add_argument("--loop-days", type=int, default=2)
    ap.add_argument("--draws", type=int, default=16)
    ap.add_argument("--advisors", nargs="+", default=list(VARIANTS), choices=list(VARIANTS))
    ap.add_argument("--out", default="runs/advisor_safety")
    main(ap.parse_args())
