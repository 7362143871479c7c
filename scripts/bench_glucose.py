"""The JAX UVa/Padova simulator vs simglucose 0.2.11: agreement and speed, in one script.

    .venv/bin/python scripts/bench_glucose.py validate --out runs/glucose_validation
    .venv/bin/python scripts/bench_glucose.py speed --sim-days 3 --scenarios 1000 --json out.json

``validate``: each patient under simglucose's own ``T1DSimEnv`` + ``BBController`` + Insulet
pump + Dexcom sensor made noise-free, for ``--hours`` on a fixed day of meals (simglucose's
RandomScenario means: 45 g at 7:00, 10 g at 9:30, 70 g at 12:00, 10 g at 15:00, 80 g at 18:00,
10 g at 21:30), against ``twinjax.physiology`` running the same closed loop (vmapped over the
patients) with each ``--substeps`` count. Writes ``validation.csv`` / ``validation.md``
(patient, RMS and max |difference| of the per-minute glucose, simglucose's seconds).

``speed``: simulated patient-days per second for the same workload in both (random meals,
sensor noise, basal-bolus control, pump): simglucose one patient-day at a time (one process, as
its ``sim`` runs a patient; the median of ``--sim-days`` days after a one-hour warm-up), and
JAX one jitted ``vmap`` over 30 patients x ``--batch`` scenarios (compile time reported apart;
the median of ``--repeats`` calls), then 30 x ``--scenarios`` patient-days in chunks of
30 x ``--chunk`` with the same compiled function.
"""

import argparse
import json
import os
import platform
import statistics
import time
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import pandas as pd

from twinjax.physiology import load_patients, load_settings, patient_names
from twinjax.physiology.closed_loop import run_basal_bolus
from twinjax.physiology.pump import Pump
from twinjax.physiology.scenario import random_scenario
from twinjax.physiology.sensor import Sensor

MEAL_PLAN = ((7 * 60, 45.0), (9 * 60 + 30, 10.0), (12 * 60, 70.0), (15 * 60, 10.0),
             (18 * 60, 80.0), (21 * 60 + 30, 10.0))  # fmt: skip


def fixed_meals(minutes: int) -> np.ndarray:
    """Grams announced at each minute: :data:`MEAL_PLAN` repeated daily."""
    meals = np.zeros(minutes)
    for day in range(-(-minutes // 1440)):
        for t, grams in MEAL_PLAN:
            if day * 1440 + t < minutes:
                meals[day * 1440 + t] = grams
    return meals


def jax_basal_bolus(names, meals, *, substeps: int, noise_free: bool = True, key=None):
    """Per-minute glucose of ``names`` under the basal-bolus loop (vmapped over patients)."""
    p, st = load_patients(names), load_settings(names)
    sensor, pump = Sensor.named("Dexcom"), Pump.named("Insulet")

    def one(pi, si, k):
        k = None if noise_free else k
        return run_basal_bolus(k, pi, si, meals, sensor=sensor, pump=pump, substeps=substeps).bg

    keys = jax.random.split(jax.random.key(0) if key is None else key, len(names))
    return np.asarray(jax.jit(jax.vmap(one))(p, st, keys))


def validate(args) -> pd.DataFrame:
    from twinjax.physiology.reference import simglucose_bb

    names = args.patients or list(patient_names())
    meals = fixed_meals(int(args.hours * 60))
    ours = {s: jax_basal_bolus(names, meals, substeps=s) for s in args.substeps}
    rows = []
    for i, name in enumerate(names):
        ref = simglucose_bb(name, meals)
        row = {"patient": name, "simglucose_s": round(ref.seconds, 2)}
        for s, bg in ours.items():
            diff = bg[i] - ref.bg
            row[f"rms_rk4x{s}"] = float(np.sqrt(np.mean(diff**2)))
            row[f"max_abs_rk4x{s}"] = float(np.abs(diff).max())
        row["bg_min"], row["bg_max"] = float(ref.bg.min()), float(ref.bg.max())
        rows.append(row)
        print(json.dumps(row), flush=True)
    table = pd.DataFrame(rows)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    table.to_csv(out / "validation.csv", index=False)
    (out / "validation.md").write_text(markdown(table))
    print(markdown(table))
    return table


def markdown(table: pd.DataFrame) -> str:
    """A Markdown table (numbers to 3 significant digits)."""
    cell = lambda v: f"{v:.3g}" if isinstance(v, float) else str(v)
    lines = ["| " + " | ".join(table.columns) + " |", "|" + "---|" * len(table.columns)]
    lines += [
        "| " + " | ".join(cell(v) for v in row) + " |" for row in table.itertuples(index=False)
    ]
    return "\n".join(lines) + "\n"


def _one_day_jax(batch: int, substeps: int):
    """A jitted (30 patients x batch scenarios) day: random meals, noisy CGM, BB, pump."""
    p, st = load_patients(), load_settings()
    sensor, pump = Sensor.named("Dexcom"), Pump.named("Insulet")

    def one(key, pi, si):
        k_meal, k_noise = jax.random.split(key)
        meals = random_scenario(k_meal, 1)
        trace = run_basal_bolus(k_noise, pi, si, meals, sensor=sensor, pump=pump, substeps=substeps)
        return trace.cgm

    f = jax.jit(jax.vmap(jax.vmap(one, (0, None, None)), (0, 0, 0)))
    return lambda key: f(jax.random.split(key, 30 * batch).reshape(30, batch), p, st)


def speed(args) -> dict:
    from twinjax.physiology.reference import simglucose_bb

    names = patient_names()
    result = {"machine": platform.processor() or platform.machine(), "cpus": os.cpu_count(),
              "jax_backend": jax.default_backend(), "substeps": args.substeps}  # fmt: skip
    simglucose_bb(names[0], fixed_meals(60), noise_free=False)  # warm-up: imports, tables
    seconds = []
    for d in range(args.sim_days):
        meals = np.asarray(random_scenario(jax.random.key(100 + d), 1))
        seconds.append(simglucose_bb(names[d % 30], meals, noise_free=False, seed=d).seconds)
        print(f"simglucose day {d}: {seconds[-1]:.2f} s", flush=True)
    sim_rate = 1.0 / statistics.median(seconds)
    result["simglucose"] = {"seconds_per_patient_day": seconds, "patient_days_per_s": sim_rate}

    step = _one_day_jax(args.batch, args.substeps)
    tic = time.perf_counter()
    jax.block_until_ready(step(jax.random.key(0)))
    compile_s = time.perf_counter() - tic
    walls = []
    for r in range(args.repeats):
        tic = time.perf_counter()
        jax.block_until_ready(step(jax.random.key(1 + r)))
        walls.append(time.perf_counter() - tic)
    jax_rate = 30 * args.batch / statistics.median(walls)
    result["jax"] = {"first_call_s": compile_s, "batch": 30 * args.batch, "walls_s": walls,
                     "patient_days_per_s": jax_rate}  # fmt: skip
    result["speedup"] = jax_rate / sim_rate
    print(f"simglucose {sim_rate:.4f} patient-days/s | JAX {jax_rate:.1f} patient-days/s "
          f"(first call {compile_s:.1f} s) | {jax_rate / sim_rate:.0f}x", flush=True)  # fmt: skip

    if args.scenarios:
        chunk = step
        if args.chunk != args.batch:
            chunk = _one_day_jax(args.chunk, args.substeps)
            jax.block_until_ready(chunk(jax.random.key(0)))  # compile apart
        tic = time.perf_counter()
        means = []
        for c in range(-(-args.scenarios // args.chunk)):
            cgm = chunk(jax.random.fold_in(jax.random.key(7), c))
            means.append(float(jnp.mean(cgm)))
        wall = time.perf_counter() - tic
        total = 30 * args.chunk * len(means)
        result["cohort"] = {"patient_days": total, "wall_s": wall, "patient_days_per_s": total / wall,
                            "mean_cgm": float(np.mean(means))}  # fmt: skip
        print(f"30 x {args.chunk * len(means)} scenarios = {total} patient-days in {wall:.1f} s "
              f"({total / wall:.0f} patient-days/s)", flush=True)  # fmt: skip
    if args.json:
        Path(args.json).write_text(json.dumps(result, indent=2))
    return result


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    v = sub.add_parser("validate", help="per-patient agreement with simglucose")
    v.add_argument("--patients", nargs="*", default=None, help="names (default: all 30)")
    v.add_argument("--hours", type=float, default=24.0)
    v.add_argument("--substeps", type=int, nargs="+", default=[1, 2, 4])
    v.add_argument("--out", default="runs/glucose_validation")
    s = sub.add_parser("speed", help="patient-days per second, JAX vs simglucose")
    s.add_argument("--sim-days", type=int, default=3, help="simglucose patient-days timed")
    s.add_argument("--batch", type=int, default=100, help="JAX scenarios per patient per call")
    s.add_argument("--repeats", type=int, default=3)
    s.add_argument("--scenarios", type=int, default=1000, help="0 skips the 30 x S figure")
    s.add_argument("--chunk", type=int, default=100)
    s.add_argument("--substeps", type=int, default=4)
    s.add_argument("--json", default=None)
    args = parser.parse_args()
    validate(args) if args.command == "validate" else speed(args)


if __name__ == "__main__":
    main()
