"""Forecast with saved twins: ``python -m twinjax experiment=forecast twin=RUN_DIR data=files
data.observations=new.csv`` writes ``forecasts.csv`` (subject_id, horizon, time, variable, mean and
quantiles, in data units) and a figure per subject, from the end of each subject's data.

A subject the twins know is forecast by its personal twin; another by the population twin, or
(``experiment.personalize_new=true``) by a twin personalized from its own data first.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import jax
import numpy as np

from twinjax import bundle as tb
from twinjax import pipeline
from twinjax.config import Config
from twinjax.data.times import to_datetimes
from twinjax.runtime.fingerprint import differences
from twinjax.runtime.manifest import DamagedModelError
from twinjax_experiments import auto_twin
from twinjax_experiments.config import Forecast
from twinjax_experiments.report import images, save_figure, table, write_csv, write_markdown


class TwinMismatch(pipeline.ConfigError):
    """The saved twins were trained with another model configuration than this run asks for."""


def check_model(bundle: tb.TwinBundle, root: Config) -> None:
    """Refuses twins whose architecture differs from this run's ``model`` group (naming it)."""
    wanted = dataclasses.asdict(root.model)
    # a setting the saved run did not record had its default then; remat_chunk, layout and
    # residuals are how the gradient was computed, not the architecture
    saved = {**dataclasses.asdict(type(root.model)()), **bundle.config.get("model", {})}
    # (and family, candidates, period, holdout, origins choose among twins, not a twin's shape)
    training_only = {"remat_chunk", "layout", "residuals", "family", "candidates", "period",
                     "holdout", "origins"}  # fmt: skip
    diff = differences(
        {k: v for k, v in saved.items() if k not in training_only},
        {k: v for k, v in wanted.items() if k not in training_only},
    )
    if diff:
        raise TwinMismatch(
            f"the twins in {root.twin} were trained with another model:\n  "
            + "\n  ".join(d.replace(": ", ": saved ", 1) for d in diff)
            + "\nPass the saved model settings (e.g. model=gru model.hidden=...) or other twins."
        )


def compute(root: Config) -> tuple[dict, object, object, object]:
    exp: Forecast = root.experiment
    if not root.twin:
        raise pipeline.ConfigError(
            "experiment=forecast needs twin=RUN_DIR (a run directory or its model/)"
        )
    try:
        bundle = tb.load(Path(root.twin))
    except DamagedModelError:
        raise  # (a ValueError, but its own user error: it names the file and what to do)
    except (FileNotFoundError, ValueError) as e:
        raise pipeline.ConfigError(str(e)) from e
    check_model(bundle, root)
    k_data = jax.random.split(jax.random.key(root.seed), 3)[0]
    cohort = pipeline.load_cohort(k_data, root.data, static_levels=bundle.static_levels or None)
    frame, bundle, new = pipeline.forecast_cohort(
        bundle, cohort, seed=root.seed, horizon=exp.horizon, n_samples=exp.n_samples,
        personalize_new=exp.personalize_new,
    )  # fmt: skip
    metrics = {
        "n_subjects": cohort.n_individuals,
        "n_known": cohort.n_individuals - len(new),
        "n_new": len(new),
        "new_personalized": bool(exp.personalize_new and new),
        "horizon": exp.horizon,
        "twin": str(root.twin),
        "twin_version": bundle.version,
    }
    return metrics, frame, cohort, bundle


def plot_subjects(frame, cohort, bundle, variable: str, n: int):
    import matplotlib.pyplot as plt

    f = list(cohort.variables).index(variable) if variable in cohort.variables else None
    ids = list(dict.fromkeys(frame.subject_id))[:n]
    fig, axes = plt.subplots(len(ids), 1, figsize=(9, 2.4 * len(ids)), squeeze=False)
    for ax, s in zip(axes[:, 0], ids, strict=True):
        rows = frame[(frame.subject_id == s) & (frame.variable == variable)]
        i = list(cohort.subject_ids).index(s)
        if f is not None:
            seen = cohort.mask[i, : cohort.lengths[i], f]
            t0 = 0.0 if cohort.t0 is None else float(cohort.t0[i])
            t = t0 + np.arange(cohort.lengths[i]) * cohort.step
            clock = cohort.meta.get("time", {})
            if clock.get("kind") == "datetime":
                t = to_datetimes(t, zoned=clock.get("zoned", False)).to_numpy()
            ax.scatter(t[seen], cohort.values[i, : cohort.lengths[i], f][seen], s=6, color="k")
        ax.fill_between(rows.time, rows.q05, rows.q95, alpha=0.25, color="tab:blue", lw=0,
                        label="90% interval")  # fmt: skip
        ax.plot(rows.time, rows.q50, color="tab:blue", label="median")
        ax.set_ylabel(f"{s}: {variable}")
    axes[0, 0].legend(fontsize=7)
    axes[-1, 0].set_xlabel("time")
    return fig


def run(root: Config, out_dir: Path) -> dict:
    if root.twin and auto_twin.is_auto(Path(root.twin)):  # saved by model.family=auto
        return auto_twin.forecast_run(root, out_dir)
    metrics, frame, cohort, bundle = compute(root)
    metrics["objective"] = None  # nothing is fitted or validated here: nothing to optimise
    write_csv(frame, out_dir / "forecasts.csv", index=False)
    exp: Forecast = root.experiment
    variable = root.data.target or bundle.variables[0]
    fig = plot_subjects(frame, cohort, bundle, variable, exp.n_plot_subjects)
    name = save_figure(fig, out_dir, "forecasts.png")
    head = frame[frame.variable == variable].head(exp.horizon)
    write_markdown(out_dir, [
        f"# Forecasts from the twins in `{root.twin}`", "",
        f"{metrics['n_subjects']} subjects ({metrics['n_known']} known to the twins, "
        f"{metrics['n_new']} new{', personalized first' if metrics['new_personalized'] else ''});"
        f" {exp.horizon} steps ahead, {exp.n_samples} sampled trajectories each; all in "
        "`forecasts.csv`.", "",
        *images([name]), "",
        *table(list(head.columns), head.round(4).to_numpy().tolist()),
    ])  # fmt: skip
    return metrics
