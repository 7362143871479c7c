"""A twin after its run: reload it, personalize a new individual, stream their data into it.

1. The cohort's twins are trained as in the default experiment and saved; ``twinjax.load`` reads
   them back and must forecast exactly like the run (largest difference reported).
2. New individuals (a synthetic cohort drawn with a key the training never used) get twins of
   their own from their first ``history_days`` only; their next ``eval_days`` are forecast one
   step ahead by their own twin and by the population twin.
3. The same individuals' history arrives in ``chunks`` pieces: a twin personalized on the
   first piece is updated with each next one (warm-started MAP steps, ``update_steps`` each);
   its error on the next ``eval_days`` is compared with the batch twin of step 2.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import jax
import numpy as np

from twinjax import bundle as tb
from twinjax import pipeline
from twinjax.config import Config
from twinjax.data import Cohort, synthetic_cohort
from twinjax.eval.score import score
from twinjax_experiments.config import TwinLifecycle
from twinjax_experiments.report import images, save_figure, table, write_markdown


def first_steps(cohort: Cohort, steps: int) -> Cohort:
    """The first ``steps`` grid steps of every individual."""
    cut = lambda a: None if a is None else a[:, :steps]
    return dataclasses.replace(
        cohort,
        values=cohort.values[:, :steps],
        mask=cohort.mask[:, :steps],
        interventions=cohort.interventions[:, :steps],
        lengths=np.minimum(cohort.lengths, steps),
        truth=cut(cohort.truth),
    )


def rmse_after(bundle, cohort: Cohort, start: int, target: int) -> np.ndarray:
    """Each individual's one-step RMSE of ``target`` on steps ``start:`` (data units)."""
    segment = np.arange(cohort.n_steps)[None] >= start
    segment = np.broadcast_to(segment, (cohort.n_individuals, cohort.n_steps))
    fc = tb.one_step(bundle, cohort, segment).stream(target)
    return score(fc)["per_individual"]["rmse"].fillna(0.0).to_numpy()


def compute(root: Config, out_dir: Path) -> dict:
    exp: TwinLifecycle = root.experiment
    k_data, k_fit, k_new, k_pers, k_stream, k_fc = jax.random.split(jax.random.key(root.seed), 6)
    cohort = pipeline.check_cohort(pipeline.load_cohort(k_data, root.data), root.data)
    fit = pipeline.fit_twins(k_fit, cohort, root, out_dir)
    saved = pipeline.save_model(fit, cohort, root, out_dir / "model")
    loaded = tb.load(out_dir)
    history = root.data.context + root.data.horizon - 1
    run_fc = fit.forecasts(cohort, fit.arrays.test, personal=True, history=history)
    load_fc = tb.one_step(loaded, cohort, fit.arrays.test)
    a = tb.forecast(saved, cohort, horizon=exp.horizon, key=k_fc, n_samples=exp.n_samples)
    b = tb.forecast(loaded, cohort, horizon=exp.horizon, key=k_fc, n_samples=exp.n_samples)

    per_day = round(24 / root.data.step) if exp.steps_per_day == 0 else exp.steps_per_day
    h_steps, e_steps = exp.history_days * per_day, exp.eval_days * per_day
    new = synthetic_cohort(
        k_new, n_individuals=exp.n_new, n_steps=h_steps + e_steps, unequal_lengths=False
    )
    new = dataclasses.replace(new, subject_ids=tuple(f"new{i}" for i in range(exp.n_new)))
    target = pipeline.target_index(cohort, root.data)
    known = tb.personalize(loaded, first_steps(new, h_steps), key=k_pers)
    rmse_pop = rmse_after(loaded, new, h_steps, target)
    rmse_batch = rmse_after(known, new, h_steps, target)

    bounds = np.linspace(0, h_steps, exp.chunks + 1).astype(int)[1:]
    stream = tb.personalize(loaded, first_steps(new, int(bounds[0])), key=k_stream)
    curve = [rmse_after(stream, new, h_steps, target)]
    for i, end in enumerate(bounds[1:]):
        key = jax.random.fold_in(k_stream, i + 1)
        stream = tb.update(stream, first_steps(new, int(end)), key=key, steps=exp.update_steps)
        curve.append(rmse_after(stream, new, h_steps, target))
    return {
        "objective": pipeline.validation_objective(fit, cohort, root.data),  # sweeps: val NLL
        "round_trip_max_abs_diff_one_step": float(
            max(
                np.abs(run_fc.mean - load_fc.mean).max(), np.abs(run_fc.scale - load_fc.scale).max()
            )
        ),
        "round_trip_max_abs_diff_sampled": float(
            np.abs(
                a[["mean", "q05", "q95"]].to_numpy() - b[["mean", "q05", "q95"]].to_numpy()
            ).max()
        ),
        "new_rmse_population": float(rmse_pop.mean()),
        "new_rmse_personalized": float(rmse_batch.mean()),
        "new_fraction_improved": float(np.mean(rmse_batch < rmse_pop)),
        "stream_rmse_final": float(curve[-1].mean()),
        "stream_over_batch_rmse": float(curve[-1].mean() / rmse_batch.mean()),
        "stream_curve": [float(c.mean()) for c in curve],
        "stream_days": [float(e / per_day) for e in bounds],
        "n_new": exp.n_new,
        "target": cohort.variables[target],
        "forecast_example": a.head(3 * cohort.n_features).to_dict("records"),
    }


def write_report(out_dir: Path, metrics: dict, exp: TwinLifecycle) -> None:
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6.5, 3.6))
    ax.plot(metrics["stream_days"], metrics["stream_curve"], "o-", label="streamed updates")
    ax.axhline(metrics["new_rmse_personalized"], color="tab:green", ls="--",
               label="batch personalization (all days)")  # fmt: skip
    ax.axhline(metrics["new_rmse_population"], color="tab:orange", ls=":", label="population twin")
    ax.set_xlabel("days of the new individuals' data taken in")
    ax.set_ylabel(f"RMSE of {metrics['target']}, next {exp.eval_days} days")
    ax.legend(fontsize=8)
    fig_name = save_figure(fig, out_dir, "streaming.png")
    m = metrics
    write_markdown(out_dir, [
        "# Twins after their run: reload, personalize, update", "",
        f"Reloaded twins forecast like the run: largest one-step difference "
        f"{m['round_trip_max_abs_diff_one_step']:.2e}, sampled {m['round_trip_max_abs_diff_sampled']:.2e}.",
        "",
        f"{m['n_new']} new individuals (a key the training never used); twins from their first "
        f"{exp.history_days} days; one-step RMSE of `{m['target']}` on the next {exp.eval_days} days:",
        "",
        *table(["twin", "RMSE"], [
            ["population", f"{m['new_rmse_population']:.4f}"],
            ["personalized (batch)", f"{m['new_rmse_personalized']:.4f}"],
            [f"streamed ({exp.chunks} chunks, {exp.update_steps} steps each)",
             f"{m['stream_rmse_final']:.4f}"],
        ]),
        "", f"Streamed / batch RMSE: **{m['stream_over_batch_rmse']:.3f}**; new individuals "
        f"improved by their own twin: {m['new_fraction_improved']:.0%}.", "",
        *images([fig_name]),
    ])  # fmt: skip


def run(root: Config, out_dir: Path) -> dict:
    metrics = compute(root, out_dir)
    write_report(out_dir, metrics, root.experiment)
    return metrics
