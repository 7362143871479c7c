"""Counterfactual replay of the glucose twins (issue 26, item 2).

For each patient of the virtual cohort (as the glucose_twins experiment makes it): identify a
Bayesian twin (:func:`~twinjax.glucose.identification.identify`; ``--twin``: ``mechanistic``,
:func:`~twinjax.glucose.mechanistic.fit_mechanistic`, six parameters, the others at age-group
medians; or ``population``,
:func:`~twinjax.glucose.population_fit.fit_population`, every parameter under the population
prior, whose parameter recovery is then written too) and a replay-style MAP baseline (:mod:`twinjax.glucose.map_twin`) on the first ``--fit-days``
days; then replay the held-out days (after ``--train-days``) under the recorded therapy and six
altered ones (:data:`~twinjax.glucose.replay.THERAPIES`) with the same meals and sensor
noise, for the truth (the patient's true parameters: simglucose's outcome, which the JAX
simulator matches to 0.003 mg/dL), the twin (every posterior draw: the mean and 90% interval of
each outcome over draws) and the baseline (its mode), and score them
(:mod:`twinjax.glucose.replay_scoring`).

    PYTHONPATH=. .venv/bin/python scripts/replay_glucose.py --per-group 10 --out /tmp/replay
    PYTHONPATH=. .venv/bin/python scripts/replay_glucose.py --twin population --starts 4 \
        --out /tmp/replay_population

Writes ``replay.md`` (the tables), ``outcomes.csv`` (every replay), ``errors.csv``,
``spearman.csv``, ``replay.json`` (settings, wall times, summary) and, for the population twin,
``recovery.csv`` (coverage and correlation per parameter) in ``--out``.
"""

import argparse
import json
import logging
import time
from pathlib import Path

import jax
import numpy as np
import pandas as pd

from twinjax.glucose import replay_scoring as rs
from twinjax.glucose.identification import TWINS, identify
from twinjax.glucose.keys import run_keys
from twinjax.glucose.map_twin import fit_map
from twinjax.glucose.mechanistic import recovery, recovery_coverage
from twinjax.glucose.records import records
from twinjax.glucose.replay import (
    OUTCOMES,
    THERAPIES,
    cohort_noise,
    first_patients,
    replay_cohort,
    replay_outcomes,
    stack,
)
from twinjax.physiology import Sensor, load_patients, load_settings, simulate_cohort
from twinjax.physiology.params import age_group
from twinjax.physiology.pump import Pump
from twinjax.runtime.compare import markdown


def _md(df: pd.DataFrame) -> str:
    """A Markdown table of ``df`` (its index as columns, column levels joined by spaces)."""
    flat = df.copy()
    if isinstance(flat.columns, pd.MultiIndex):
        flat.columns = [" ".join(map(str, c)) for c in flat.columns]
    return markdown(flat.reset_index())


def _long(out: dict, names, model: str, interval: bool) -> pd.DataFrame:
    """Outcomes ``[patients, therapies, draws]`` as the scorer's long table."""
    rows = []
    for o in OUTCOMES:
        v = out[o]
        lo, hi = np.quantile(v, [0.05, 0.95], axis=-1) if interval else (None, None)
        for i, sid in enumerate(names):
            for j, th in enumerate(THERAPIES):
                rows.append({"subject_id": sid, "group": age_group(sid), "therapy": th,
                             "model": model, "outcome": o, "value": v[i, j].mean(),
                             "lo": lo[i, j] if interval else np.nan,
                             "hi": hi[i, j] if interval else np.nan})  # fmt: skip
    return pd.DataFrame(rows)


def main(a) -> dict:
    out_dir = Path(a.out)
    out_dir.mkdir(parents=True, exist_ok=True)
    wall = {}
    keys = run_keys(a.seed)  # as experiment=glucose_twins splits them
    k_cohort, k_mech = keys.cohort, keys.mechanistic
    names = first_patients(a.per_group)
    sensor, pump = Sensor.named("Dexcom"), Pump.named("Insulet")

    t = time.perf_counter()
    cohort = simulate_cohort(k_cohort, names, a.days, sensor=sensor, pump=pump)
    recs = records(cohort)
    noise = cohort_noise(k_cohort, names, a.days, sensor)
    wall["cohort"] = time.perf_counter() - t

    t = time.perf_counter()
    twin, svi = identify(k_mech, recs, twin=a.twin, fit_days=a.fit_days, draws=a.draws,
                         svi_steps=a.svi_steps, svi_lr=a.lr, mode_steps=a.mode_steps,
                         steps=a.steps, starts=a.starts, progress=a.progress)  # fmt: skip
    jax.block_until_ready(twin.theta)
    wall[f"twin fit ({a.twin})"] = time.perf_counter() - t
    if a.twin == "population":
        recovery_coverage(recovery(twin)).round(3).to_csv(out_dir / "recovery.csv")
    t = time.perf_counter()
    base, map_losses = fit_map(jax.random.fold_in(k_mech, 2), recs, fit_days=a.fit_days,
                      steps=a.svi_steps, lr=a.lr)  # fmt: skip
    jax.block_until_ready(base.theta)
    wall["baseline fit (MAP)"] = time.perf_counter() - t

    train_cells = recs.cells(a.train_days)
    train_minutes = (train_cells - 1) * int(recs.step)
    opts = {"step": int(recs.step), "train_minutes": train_minutes, "sensor": sensor,
            "pump": pump, "substeps": 1}  # fmt: skip
    inputs = (recs.carbs, recs.insulin, noise[:, train_cells - 1 :], load_settings(names),
              recs.basal, stack(THERAPIES))  # fmt: skip
    p = load_patients(names)
    models = {"truth": (p.theta[:, None], p.x0[:, None], False),
              "twin": (twin.theta, twin.x0, True), "baseline": (base.theta, base.x0, False)}  # fmt: skip
    tables = []
    for model, (theta, x0, interval) in models.items():
        t = time.perf_counter()
        out = replay_cohort(theta, x0, *inputs, **opts)
        wall[f"replay {model}"] = time.perf_counter() - t
        tables.append(_long(out, names, model, interval))
    table = pd.concat(tables, ignore_index=True)
    table.to_csv(out_dir / "outcomes.csv", index=False)
    # check: the truth's replay of the recorded therapy against the recorded noise-free glucose
    recorded = replay_outcomes(cohort.truth[:, train_cells:, 0])
    truth = table[(table.model == "truth") & (table.therapy == "recorded")]
    check = {o: float(np.abs(truth[truth.outcome == o]["value"].to_numpy()
                             - np.asarray(recorded[o])).max()) for o in OUTCOMES}  # fmt: skip
    np.savez(out_dir / "losses.npz", twin=svi.losses, baseline=map_losses)
    (out_dir / "raw.json").write_text(json.dumps({"wall": wall, "check": check}))
    return _report(a, out_dir, table, wall, check, len(names))


def report_only(a) -> dict:
    """The report again from the files a run left in ``--out``."""
    out_dir = Path(a.out)
    table = pd.read_csv(out_dir / "outcomes.csv")
    raw = json.loads((out_dir / "raw.json").read_text())
    return _report(a, out_dir, table, raw["wall"], raw["check"], table["subject_id"].nunique())


def _report(a, out_dir: Path, table: pd.DataFrame, wall: dict, check: dict, n: int) -> dict:
    dead = rs.crashed(table)
    err_all = rs.errors(table)
    scored = table[~table["subject_id"].isin(dead)]  # the tables leave them out
    err = rs.errors(scored)
    ranks = rs.rank_agreement(table)
    cover = rs.coverage(scored)
    met = rs.targets_met(err)
    err.to_csv(out_dir / "errors.csv", index=False)
    err_all.to_csv(out_dir / "errors_all_patients.csv", index=False)
    ranks.to_csv(out_dir / "spearman.csv", index=False)
    wide = err.pivot_table(index=["therapy", "group"], columns=["outcome", "model"],
                           values="abs_error", sort=False).round(2)  # fmt: skip
    reach = ranks.assign(ok=ranks["spearman"] >= rs.RANK_TARGET).groupby("model")["ok"].sum()
    # a patient whose true time in range is the same under every therapy has no ranking
    ranked = int(ranks.groupby("subject_id")["spearman"].apply(lambda v: v.notna().any()).sum())
    rank_md = ranks.pivot_table(index=["group", "subject_id"], columns="model",
                                values="spearman").round(3)  # fmt: skip
    summary = {
        "patients": n, "settings": vars(a), "wall_s": {k: round(v, 1) for k, v in wall.items()},
        "recorded_therapy_check_max_abs": check,
        "spearman_reaching_0.9": {k: int(v) for k, v in reach.items()},
        "patients_with_a_ranking": ranked,
        "crashed_patients_left_out_of_the_error_tables": dead,
        "coverage90": {f"{m}/{o}": float(v) for (m, o), v in cover.items()},
        "targets_met": met.groupby("model")["met"].agg(["sum", "count"]).to_dict("index"),
        "targets_missed": met[~met["met"]][["model", "therapy", "group", "outcome", "abs_error"]]
        .to_dict("records"),
    }  # fmt: skip
    (out_dir / "replay.json").write_text(json.dumps(summary, indent=1, default=str))
    md = [f"# Counterfactual replay ({n} patients)", "",
          f"Median absolute error over the {n - len(dead)} patients whose glucose does not "
          f"fall to 0 on the replayed days (left out: {', '.join(dead) or 'none'}; "
          "errors_all_patients.csv has them in), percentage points (mean glucose: mg/dL)", "",
          _md(wide), "", f"Spearman (therapies ranked by time in range) >= "
          f"{rs.RANK_TARGET}: {reach.to_dict()} of {n} patients "
          f"({n - ranked} with the same true time in range under every therapy)", "", _md(rank_md), "",
          "Coverage of the twin's 90% outcome intervals", "", _md(cover.to_frame()), "",
          "Targets met (median abs error <= 3 points for time in range, <= 1 for below 70), "
          "per model over the altered therapies x age groups x the two outcomes:", "",
          _md(met[met.therapy != "recorded"].groupby("model")["met"].agg(["sum", "count"])), "",
          f"Wall times (s): {summary['wall_s']}", "",
          f"Truth replay of the recorded therapy vs the recorded glucose, max abs: {check}"]  # fmt: skip
    (out_dir / "replay.md").write_text("\n".join(md) + "\n")
    print("\n".join(md))
    return summary


def parse(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--per-group", type=int, default=10, help="patients per age group (1-10)")
    ap.add_argument("--days", type=int, default=14, help="days of records")
    ap.add_argument("--train-days", type=float, default=10.0, help="replay the days after these")
    ap.add_argument("--fit-days", type=float, default=2.0, help="days the twins are fitted on")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--twin", choices=TWINS, default="mechanistic")
    ap.add_argument("--svi-steps", type=int, default=800, help="mechanistic twin and baseline")
    ap.add_argument("--lr", type=float, default=0.02, help="mechanistic twin and baseline")
    ap.add_argument("--mode-steps", type=int, default=300, help="population twin")
    ap.add_argument("--steps", type=int, default=300, help="population twin: ELBO steps")
    ap.add_argument("--starts", type=int, default=3, help="population twin: mode-search starts")
    ap.add_argument("--draws", type=int, default=64, help="posterior draws of the twin")
    ap.add_argument("--progress", action="store_true")
    ap.add_argument("--out", default="/tmp/replay_glucose")
    ap.add_argument("--report-only", action="store_true", help="rewrite the report from --out")
    return ap.parse_args(argv)


if __name__ == "__main__":
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    args = parse()
    report_only(args) if args.report_only else main(args)
