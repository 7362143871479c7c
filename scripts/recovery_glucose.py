"""Parameter recovery of the glucose twins: the population-prior twin against the old one.

The virtual cohort is made as the glucose_twins experiment makes it (``--seed``'s keys split in
seven, the first for the cohort, the fifth for the mechanistic fit); both twins are fitted on the
first ``--fit-days`` days: the population twin (:func:`~twinjax.glucose.population_fit.fit_population`,
every parameter under the population prior) and the old one
(:func:`~twinjax.glucose.mechanistic.fit_mechanistic`, six parameters, the others fixed at
leave-one-out medians). Each one's 90% intervals and posterior means are scored against the
simulator's table (:func:`~twinjax.glucose.mechanistic.recovery`).

    PYTHONPATH=. .venv/bin/python scripts/recovery_glucose.py --out /tmp/recovery

Writes ``recovery.md`` (coverage and correlation per parameter, new beside old),
``recovery_population.csv``, ``recovery_old.csv`` (per patient) and ``recovery.json`` (settings,
wall times, the coverage table).
"""

import argparse
import json
import logging
import time
from pathlib import Path

import jax
import pandas as pd

from twinjax.glucose.keys import run_keys
from twinjax.glucose.mechanistic import fit_mechanistic, recovery, recovery_coverage
from twinjax.glucose.population_fit import fit_population
from twinjax.glucose.records import records
from twinjax.glucose.replay import first_patients
from twinjax.physiology import simulate_cohort
from twinjax.runtime.compare import markdown


def _timed(wall: dict, name: str, fn, *args, **kwargs):
    t = time.perf_counter()
    out = fn(*args, **kwargs)
    jax.block_until_ready(out)
    wall[name] = round(time.perf_counter() - t, 1)
    return out


def main(a) -> dict:
    out = Path(a.out)
    out.mkdir(parents=True, exist_ok=True)
    wall = {}
    keys = run_keys(a.seed)  # as experiment=glucose_twins splits them
    k_cohort, k_mech = keys.cohort, keys.mechanistic
    names = first_patients(a.per_group)
    cohort = _timed(wall, "cohort", simulate_cohort, k_cohort, names, a.days)
    recs = records(cohort)
    new, _ = _timed(wall, "population fit", fit_population, k_mech, recs, fit_days=a.fit_days,
                    mode_steps=a.mode_steps, steps=a.steps, starts=a.starts, draws=a.draws,
                    progress=True)  # fmt: skip
    rec_new = recovery(new)
    rec_new.to_csv(out / "recovery_population.csv", index=False)
    table = recovery_coverage(rec_new)
    if a.old_steps > 0:  # the old twin beside it
        old, _ = _timed(wall, "old fit", fit_mechanistic, k_mech, recs, fit_days=a.fit_days,
                        steps=a.old_steps, lr=0.02, draws=a.draws)  # fmt: skip
        rec_old = recovery(old)
        rec_old.to_csv(out / "recovery_old.csv", index=False)
        table = table.join(recovery_coverage(rec_old), rsuffix=" (old)")
    cols = ["coverage90", "log_correlation", "median_abs_log_error"]
    table = table[[c + s for c in cols for s in ("", " (old)") if c + s in table]].round(3)
    text = (f"# Parameter recovery, {len(names)} patients, seed {a.seed}, first {a.fit_days} "
            f"days\n\n{markdown(table.reset_index())}\n\nwall (s): {wall}\n")  # fmt: skip
    (out / "recovery.md").write_text(text)
    summary = {"settings": vars(a), "wall_s": wall, "table": table.reset_index().to_dict("records")}
    (out / "recovery.json").write_text(json.dumps(summary, indent=1, default=str))
    print(text)
    return summary


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--per-group", type=int, default=10)
    ap.add_argument("--days", type=int, default=14)  # the cohort's (as glucose_twins: its meals)
    ap.add_argument("--fit-days", type=float, default=2.0)
    ap.add_argument("--mode-steps", type=int, default=300)
    ap.add_argument("--steps", type=int, default=300)
    ap.add_argument("--starts", type=int, default=3)  # mode-search starts (fit_guides)
    ap.add_argument("--old-steps", type=int, default=800)  # 0: no old twin
    ap.add_argument("--draws", type=int, default=200)
    ap.add_argument("--out", default="recovery_glucose")
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    pd.set_option("display.width", 200)
    main(ap.parse_args())
