"""Default experiment: population vs personalized recurrent twins (synthetic cohort by default)."""

from __future__ import annotations

import dataclasses
import json
import logging
from pathlib import Path

import jax
import numpy as np
import pandas as pd

from twinjax import pipeline
from twinjax.config import Config
from twinjax.eval import plots
from twinjax_experiments.config import TwinsSynthetic
from twinjax_experiments.report import images, table, write_csv, write_markdown

log = logging.getLogger(__name__)


def run(root: Config, out_dir: Path) -> dict:
    if pipeline.family_of(root) == "auto":
        if jax.process_count() > 1:
            raise pipeline.ConfigError(
                "the auto twin runs on one process: with distributed.enabled=true use "
                "model.family=recurrent"
            )
        from twinjax_experiments import auto_twin

        return auto_twin.run(root, out_dir)
    k_data, k_fit, k_plot = jax.random.split(jax.random.key(root.seed), 3)
    timings = pipeline.Timings()  # seconds per phase: metrics["timings"], one log line each
    with timings.phase("data"):
        cohort = pipeline.check_cohort(pipeline.load_cohort(k_data, root.data), root.data)
        cohort, share = pipeline.share_of(cohort)  # share None: one process holds the cohort
    fit = pipeline.fit_twins(k_fit, cohort, root, out_dir, timings=timings, share=share)
    with timings.phase("save"):
        bundle = pipeline.save_model(fit, cohort, root, out_dir / "model", share=share)
    with timings.phase("evaluation"):
        per_individual = pipeline.evaluate_twins(fit, cohort, root.data, share=share)
        metrics = pipeline.summary_metrics(per_individual)
    metrics["n_individuals"] = len(bundle.subject_ids)
    metrics["target"] = cohort.variables[pipeline.target_index(cohort, root.data)]
    if "dropped_rows" in cohort.meta:
        metrics["dropped_rows"] = cohort.meta["dropped_rows"]["count"]
    metrics["data_summary"] = cohort.meta["data_summary"]
    with timings.phase("validation"):
        val_per = pipeline.evaluate_twins(fit, cohort, root.data, segment="val", share=share)
        metrics["objective"] = pipeline.validation_objective(fit, cohort, root.data, val=val_per)
        val = pipeline.summary_metrics(val_per)
    metrics["validation_rmse_ratio"] = val["rmse_ratio_personalized_over_population"]
    metrics["warnings"] = personalization_warnings(val, root.train)
    for w in metrics["warnings"]:
        log.warning("%s", w)
    if metrics["population"] is not None:  # a test period: the twins against LOCF on it
        with timings.phase("skill table"):
            forecasts = pipeline.one_step_skill(fit, cohort, root.data, share=share)
            metrics["skill"] = skill(forecasts, share=share)
    if share is not None:
        metrics["processes"] = jax.process_count()
    with timings.phase("report"):
        if jax.process_index() == 0:  # the whole cohort's files, from gathered summaries
            write_report(out_dir, root, metrics, fit, cohort, per_individual, key=k_plot,
                         subject_ids=bundle.subject_ids)  # fmt: skip
    metrics["timings"] = timings.seconds
    metrics["memory"] = timings.memory  # peak RSS (and device memory) at each phase's end, MiB
    return metrics


def skill(forecasts: dict, *, share=None) -> dict:
    """Each forecaster's pooled scores (twinjax.eval.score) and its CRPS and RMSE relative to
    the last value carried forward, on the same points (``share``: the forecasts of one
    process's share; pooled from every share's per-individual scores)."""
    from twinjax.eval.score import pooled_rows, score
    from twinjax.train.processes import allgather

    if share is None:
        pooled = {name: score(fc)["pooled"] for name, fc in forecasts.items()}
    else:
        rows = {name: score(fc)["per_individual"] for name, fc in forecasts.items()}
        pooled = {name: pooled_rows(pd.concat([r[name] for r in allgather(rows)]))
                  for name in rows}  # fmt: skip
    base = pooled["last value"]
    for row in pooled.values():
        ok = row["n"] and base["crps"]
        row["crps_vs_last_value"] = row["crps"] / base["crps"] if ok else None
        row["rmse_vs_last_value"] = row["rmse"] / base["rmse"] if ok and base["rmse"] else None
    return pooled


def skill_lines(skill: dict) -> list[str]:
    """The skill table and, in words, whether the last value beats the twins."""
    cols = ("n", "rmse", "mae", "crps", "coverage_90", "width_90", "crps_vs_last_value")
    fmt = lambda v: "-" if v is None else (f"{v:.4g}" if isinstance(v, float) else str(v))
    lines = ["One-step forecasts of the test period next to the last value carried forward "
             "(its interval: the cohort's observed changes on the training steps), on the same "
             "points:", "", *table(["forecaster", *cols],
                                   [[m, *(fmt(r[c]) for c in cols)] for m, r in skill.items()]),
             ""]  # fmt: skip
    best = min(("population", "personalized"), key=lambda m: skill[m]["crps"] or float("inf"))
    ratio = skill[best]["crps_vs_last_value"]
    if ratio is not None and ratio > 1.0:
        lines.append(f"**The last value carried forward beats the twins** (CRPS: the better twin, "
                     f"{best}, is {ratio:.3f}x the last value's).")  # fmt: skip
    elif ratio is not None:
        lines.append(f"The {best} twins' CRPS is {ratio:.3f}x the last value's.")
    return lines


def personalization_warnings(val: dict, train) -> list[str]:
    """A warning when the personalized twins forecast the validation period worse (RMSE) than
    the population twin: personal fine-tuning overfit (few observations per individual, many
    personal steps, a weak prior). Judged on validation, so the test period stays unseen."""
    ratio = val["rmse_ratio_personalized_over_population"]  # None: no validation target
    if ratio is None or not ratio > 1.0 or train.selection != "none":
        return []
    return [
        f"the personalized twins forecast the validation period worse than the population twin "
        f"(RMSE ratio {ratio:.2f}; {val['fraction_individuals_improved']:.0%} of individuals "
        f"improved): personal fine-tuning overfits at these settings. Try "
        f"train.selection=individual (each individual keeps its personal twin only where it "
        f"beats the population on validation), a larger train.prior_strength (now "
        f"{train.prior_strength:g}) or fewer train.personal_steps (now {train.personal_steps})"
    ]


def data_line(s: dict) -> str:
    """The data summary in a sentence, with its warnings."""
    excluded = [str(e["subject"]) for e in s["subjects_excluded"]]
    line = (
        f"Data: {s['subjects']} subjects, {len(s['variables'])} variable(s), a grid of "
        f"{s['grid_steps']} steps (step {s['step']}), {s['fraction_observed']:.1%} observed; "
        f"{s['rows_merged']} row(s) merged into shared cells, {s['rows_dropped']} dropped, "
        f"{len(excluded)} subject(s) excluded"
        + (f" ({', '.join(excluded[:10])})." if excluded else ".")
    )
    return line + "".join(f" **Warning:** {w}." for w in s["warnings"])


def results_lines(metrics: dict, data) -> list[str]:
    """The test metrics as a table and a sentence, or why there are none."""
    pop, per = metrics["population"], metrics["personalized"]
    if pop is None:
        why = ("there is no test period (data.test_fraction=0: every step trained or validated)"
               if data.test_fraction == 0 else "no subject has an observed target in its test "
               "period")  # fmt: skip
        return [f"No test metrics: {why}."]
    keys = ("rmse_mean", "rmse_median", "mae_mean", "nll_mean", "coverage50_pooled",
            "coverage90_pooled")  # fmt: skip
    return [
        "One-step-ahead forecasts on each individual's held-out test period (the last "
        f"{data.test_fraction:.0%} of their timeline), each from the previous "
        f"{data.context + data.horizon - 1} steps (a training window of data.context + "
        "data.horizon steps, less the step forecast).",
        "",
        *table(["metric", "population", "personalized"],
               [[k, f"{pop[k]:.4f}", f"{per[k]:.4f}"] for k in keys]),
        "",
        "Personalized / population RMSE: "
        f"**{metrics['rmse_ratio_personalized_over_population']:.3f}**; "
        f"individuals improved: {metrics['fraction_individuals_improved']:.0%}.",
    ]  # fmt: skip


def write_report(out_dir: Path, cfg: Config, metrics: dict, fit, cohort, per_individual, *, key,
                 subject_ids):  # fmt: skip
    """per_individual.csv (``per_individual`` of the individuals ``subject_ids``), the forecast
    and error figures (``key``: their draws; of ``fit``'s individuals: under several processes,
    those of process 0's share), report.md."""
    exp: TwinsSynthetic = cfg.experiment
    frame = pd.DataFrame(
        {f"{name}_{k}": v for name, m in per_individual.items() for k, v in m.items()}
    )
    frame.insert(0, "subject_id", list(subject_ids))
    if len(subject_ids) != cohort.n_individuals:  # the figures: process 0's individuals
        mine = {s: i for i, s in enumerate(subject_ids)}
        rows = np.array([mine[s] for s in cohort.subject_ids])
        per_individual = jax.tree.map(lambda x: x[rows], per_individual)
    write_csv(frame, out_dir / "per_individual.csv", index=False)
    if metrics["population"] is None:  # nothing tested: no forecast figures, the loss only
        figures = ["population_loss.png"] if len(fit.population_losses) else []
        for name in figures:
            plots.plot_losses(out_dir / name, fit.population_losses, "population twin")
    else:
        figures = plots.twin_report_figures(
            fit,
            cohort,
            per_individual,
            out_dir,
            target=pipeline.target_index(cohort, cfg.data),
            history=cfg.data.context + cfg.data.horizon - 1,
            key=key,
            n_individuals=exp.n_plot_individuals,
        )
    write_markdown(out_dir, [
        "# Population vs personalized twins",
        "",
        f"{metrics['n_individuals']} individuals; target stream `{metrics['target']}`; "
        f"{cfg.model.cell.upper()} with {cfg.model.hidden} hidden units"
        f"{' and temporal attention' if cfg.model.attention else ''}.",
        "",
        data_line(metrics["data_summary"]),
        "",
        *results_lines(metrics, cfg.data),
        "",
        *(skill_lines(metrics["skill"]) if "skill" in metrics else []),
        "",
        *(f"**Warning:** {w}." for w in metrics["warnings"]),
        "",
        *images(figures),
        "",
        "Configuration:",
        "",
        "```json",
        json.dumps(dataclasses.asdict(cfg), indent=1, default=str),
        "```",
    ])  # fmt: skip
