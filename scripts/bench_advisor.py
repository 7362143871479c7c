"""Wall time of one bolus-advisor call (twinjax.glucose.advise), compiled apart.

    .venv/bin/python scripts/bench_advisor.py --draws 16 --horizons 300 480 --repeats 10

A 70 g meal just announced to adult#001's twin (``perturbed_twin``, ``--draws`` draws) at rest;
for each horizon (minutes) the first call (tracing and XLA compilation) and the median of
``--repeats`` further calls, with the doses chosen. Also the process CPU time per call, which
is steadier than wall time on a shared machine.
"""

import argparse
import statistics
import time

import jax
import jax.numpy as jnp

from twinjax.glucose import Advisor, perturbed_twin
from twinjax.glucose.advisor import advise_jit
from twinjax.physiology import initial_state, load_patients, load_settings, steady_basal


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--draws", type=int, default=16)
    ap.add_argument("--horizons", type=int, nargs="+", default=[300, 480])
    ap.add_argument("--steps", type=int, default=Advisor.steps)
    ap.add_argument("--repeats", type=int, default=10)
    args = ap.parse_args()
    name = "adult#001"
    draws = perturbed_twin(jax.random.key(0), [name], draws=args.draws).patient(0)
    state = jax.vmap(initial_state)(draws)._replace(planned=jnp.full(args.draws, 70.0))
    basal = steady_basal(jax.tree.map(lambda a: a[0], load_patients([name])))
    clinic = 70.0 / float(load_settings([name]).carb_ratio[0])
    print(f"{jax.devices()[0].platform}, {args.draws} draws, {args.steps} steps, 1 RK4 substep")
    for horizon in args.horizons:
        adv = Advisor(horizon=horizon, steps=args.steps)
        call = lambda adv=adv: jax.block_until_ready(advise_jit(
            draws, state, basal=basal, clinic_dose=clinic, sample_time=3, advisor=adv))  # fmt: skip
        tic = time.perf_counter()
        out = call()
        first = time.perf_counter() - tic
        walls, cpus = [], []
        for _ in range(args.repeats):
            t0, c0 = time.perf_counter(), time.process_time()
            call()
            walls.append(time.perf_counter() - t0)
            cpus.append(time.process_time() - c0)
        print(f"horizon {horizon} min: first call {first:.1f} s, then median "
              f"{statistics.median(walls):.3f} s wall ({statistics.median(cpus):.3f} s CPU); "
              f"dose {float(out.dose):.2f} U vs clinic {float(out.clinic_dose):.2f} U, "
              f"predicted TIR {float(out.tir):.3f} vs {float(out.clinic_tir):.3f}")  # fmt: skip


if __name__ == "__main__":
    main()
