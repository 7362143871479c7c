"""Forecast with saved twins: ``python -m twinjax experiment=forecast twin=RUN_DIR data=files
data.observations=new.csv`` writes ``forecasts.csv`` (subject_id, horizon, time, variable, mean and
quantiles, in data units) and a figure per subject, from the end of each subject's data.

A subject the twins know is forecast by its personal twin; another by the population twin, or
(``experiment.personalize_new=true``) by a twin personalized from its own data first.
"""

from __future__ import annotations

import dataclasses
import logging
from pathlib import Path

import jax
import numpy as np
import pandas as pd

from twinjax import bundle as tb
from twinjax import pipeline
from twinjax.config import Config
from twinjax.data.times import parse_times, to_datetimes
from twinjax.eval.auto import bias_warning, is_auto, load_auto
from twinjax.eval.panel import Panel, future_times
from twinjax.eval.plots import panel_forecasts
from twinjax.runtime.fingerprint import differences
from twinjax.runtime.manifest import DamagedModelError
from twinjax_experiments.config import Forecast
from twinjax_experiments.report import images, save_figure, table, write_csv, write_markdown

log = logging.getLogger(__name__)


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
    if root.twin and is_auto(Path(root.twin)):  # saved by model.family=auto
        return forecast_run(root, out_dir)
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


def requested_times(path, panel: Panel, data, clock: str = "number") -> tuple[Panel, np.ndarray]:
    """The subjects of ``path`` (a CSV or Parquet of ``data.subject_col``, ``data.time_col``
    rows) and their requested times ``[N, H]`` (in time order, NaN-padded to the longest list),
    on the panel's clock: numbers, or for a cohort read with datetimes (``clock="datetime"``)
    dates and times written as in the data (seconds since 1970 on the grid).

    Raises:
      ConfigError: a missing file or column, a time that does not read on the data's clock, no
        subject with two visits in the data (others are left out with a warning, as in the
        run), or a time at or before the subject's last visit (naming them)."""
    path = Path(path)
    if not path.exists():
        raise pipeline.ConfigError(f"experiment.at={path}: no such file")
    table = pd.read_parquet(path) if path.suffix == ".parquet" else pd.read_csv(path)
    missing = [c for c in (data.subject_col, data.time_col) if c not in table.columns]
    if missing:
        raise pipeline.ConfigError(f"experiment.at={path}: no column(s) {missing} "
                                   f"(it has {list(table.columns)})")  # fmt: skip
    parsed = parse_times(table[data.time_col])
    if parsed.kind != clock:
        raise pipeline.ConfigError(f"experiment.at={path}, column {data.time_col!r}: its times "
                                   f"read as {parsed.kind}s, the data's as {clock}s")  # fmt: skip
    bad = np.isnan(parsed.values)
    if bad.any():
        rows = [int(i) + 2 for i in np.flatnonzero(bad)[:5]]
        raise pipeline.ConfigError(f"experiment.at={path}, column {data.time_col!r}: lines {rows} "
                                   f"hold no {clock}")  # fmt: skip
    when = parsed.values
    ids = table[data.subject_col].astype(str).to_numpy()
    known = {str(s): i for i, s in enumerate(panel.subject)}
    unknown = sorted(set(ids) - set(known))
    if unknown:  # as in the run: a subject needs two visits to be forecast
        log.warning("experiment.at: %d subject(s) without two visits in the data left out: %s",
                    len(unknown), ", ".join(unknown[:10]))  # fmt: skip
    if len(unknown) == len(set(ids)):
        raise pipeline.ConfigError(f"experiment.at={path}: none of its subjects has two visits "
                                   "in the data")  # fmt: skip
    keep = np.isin(ids, list(known))
    ids, when = ids[keep], when[keep]
    order = sorted(set(ids), key=known.get)
    lists = [np.sort(when[ids == s]) for s in order]
    times = np.full((len(order), max(len(x) for x in lists)), np.nan)
    for k, x in enumerate(lists):
        times[k, : len(x)] = x
    panel = panel.take([known[s] for s in order])
    early = [s for s, bad in zip(order, times[:, 0] <= panel.last()[0], strict=True) if bad]
    if early:
        raise pipeline.ConfigError(f"experiment.at={path}: times at or before the last visit of "
                                   f"{early[:10]}")  # fmt: skip
    return panel, times


def forecast_run(root: Config, out_dir: Path) -> dict:
    """``experiment=forecast twin=RUN`` with an auto twin: the saved choice and calibration
    forecast the next ``experiment.horizon`` visits of every subject of the data group."""
    try:
        twin = load_auto(Path(root.twin))
    except DamagedModelError:
        raise  # (a ValueError, but its own user error: it names the file and what to do)
    except ValueError as e:
        raise pipeline.ConfigError(str(e)) from e
    if root.data.target is not None and root.data.target != twin.variable:
        raise pipeline.ConfigError(
            f"the auto twin in {root.twin} forecasts {twin.variable!r}, not data.target="
            f"{root.data.target!r}"
        )
    root.data.target = twin.variable
    cohort, target, panel, excluded = pipeline.load_auto_panel(root)
    panel = panel._replace(period=twin.period)
    exp = root.experiment
    if exp.at is not None:
        clock = cohort.meta.get("time", {}).get("kind", "number")
        panel, times = requested_times(exp.at, panel, root.data, clock)
    else:
        times = future_times(panel, exp.horizon)
    extra = {}
    if "recurrent" in twin.members:  # refitted on these visits (a baseline's fit is its data)
        extra["recurrent"] = pipeline.RecurrentForecaster(root, out_dir / "recurrent")
    asked = np.isfinite(times)
    fc = twin.forecast(panel, np.where(asked, times, panel.last()[0][:, None] + 1.0), extra=extra)
    fc = dataclasses.replace(fc, mask=asked)
    frame = fc.frame().drop(columns=["y", "observed"])
    frame = frame[asked.ravel()].reset_index(drop=True)
    frame["time"] = pipeline.data_times(frame["time"], cohort)
    frame.insert(3, "variable", target)
    write_csv(frame, out_dir / "forecasts.csv", index=False)
    fig = panel_forecasts(fc, panel, fc, exp.n_plot_subjects)
    name = save_figure(fig, out_dir, "forecasts.png")
    lean = bias_warning(twin.choice.get("origin_bias"))  # (a twin saved before it: none)
    write_markdown(out_dir, [
        f"# Forecasts of `{target}` from the auto twin in `{root.twin}`", "",
        f"{len(panel.n)} subjects, "
        + (f"at the times listed in `{exp.at}`" if exp.at is not None else
           f"the next {exp.horizon} visits each (spaced by the subject's median gap)")
        + f", by **{'+'.join(twin.members)}** with the saved per-horizon calibration (its "
        "spread scaled by the time elapsed); all in `forecasts.csv`.", "",
        *(["(From its training run.) " + lean[0], ""] if lean else []), *images([name]),
    ])  # fmt: skip
    return {
        "family": "auto",
        "twin": str(root.twin),
        "members": list(twin.members),
        "n_subjects": int(len(panel.n)),
        "subjects_excluded": excluded,
        "horizon": exp.horizon,
        "objective": None,  # nothing is fitted or validated here
    }
