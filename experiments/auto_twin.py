"""The default twin of a user's files (``data=files``; ``model.family=auto``): the family that
forecasts this cohort best, chosen on its own visits, judged against the baselines.

1. The target's observed visits form a panel; each subject's last ``model.holdout`` visits (1 for
   series shorter than 5) are held out and every candidate (LOCF, drift, seasonal naive, a
   mixed model, ETS, ARIMA; :mod:`twinjax.eval.panel`) and ``auto`` forecast them from the
   visits before, calibrated per horizon by rolling origins: the skill table, in words where a
   baseline wins.
2. The final twin is chosen again and calibrated on all the visits (``model/auto.json``) and
   forecasts the next ``data.horizon`` visits of every subject (``forecasts.csv``, a figure).
   ``experiment=forecast twin=RUN`` and ``twinjax.eval.auto.load_auto`` use it afterwards.
"""

from __future__ import annotations

import dataclasses
import logging
from pathlib import Path

import jax
import numpy as np
import pandas as pd

from twinjax import pipeline
from twinjax.config import Config
from twinjax.eval.auto import fit_auto, load_auto, save_auto, skill_table
from twinjax.eval.panel import Panel, future_times
from twinjax.runtime.manifest import DamagedModelError
from twinjax_experiments.report import images, save_figure, table, write_csv, write_markdown

log = logging.getLogger(__name__)


def _panel(root: Config):
    cohort = pipeline.load_cohort(jax.random.key(root.seed), root.data, sparse=True)
    panel, target, excluded = pipeline.auto_panel(cohort, root.data, period=root.model.period)
    return cohort, target, panel, excluded


def compute(root: Config, out_dir: Path) -> dict:
    """The skill table on held-out visits, the final twin and its forecasts."""
    families, extra = pipeline.auto_candidates(root, out_dir)
    timings = pipeline.Timings()
    with timings.phase("data"):
        cohort, target, panel, excluded = _panel(root)
    with timings.phase("skill table"):
        skill, held, choice = skill_table(
            panel, h=root.model.holdout, families=families, extra=extra
        )
    with timings.phase("final fit"):
        twin, final = fit_auto(panel, horizon=root.data.horizon, variable=target,
                               families=families, extra=extra,
                               origins=root.model.origins)  # fmt: skip
        forecast = twin.forecast(panel, extra=extra)
    return dict(cohort=cohort, target=target, panel=panel, excluded=excluded, skill=skill,
                held=held, choice=choice, twin=twin, final=final, forecast=forecast,
                timings=timings)  # fmt: skip


def verdict(skill) -> list[str]:
    """The skill table in words: how auto compares with the best baseline, plainly."""
    best = skill.attrs["best_baseline"]
    auto = skill.loc["auto"]
    ratio = float(auto.crps_vs_best_baseline)
    if ratio <= 1.0:
        return [f"On the held-out visits the auto twin's CRPS is {ratio:.3f}x that of the best "
                f"baseline ({best}); its RMSE {float(auto.rmse_vs_best_baseline):.3f}x the "
                "best baseline's."]  # fmt: skip
    return [f"**A baseline wins:** on the held-out visits {best} has a lower CRPS than the auto "
            f"twin ({ratio:.3f}x {best}'s): the rolling origins on earlier visits chose "
            f"differently than these last visits reward."]  # fmt: skip


def plot(out, panel, held, n: int):
    import matplotlib.pyplot as plt

    idx = np.arange(min(n, len(panel.n)))
    fig, axes = plt.subplots(len(idx), 1, figsize=(8, 2.3 * len(idx)), squeeze=False)
    for ax, i in zip(axes[:, 0], idx, strict=True):
        seen = slice(0, panel.n[i])
        ax.plot(panel.time[i, seen], panel.y[i, seen], "k.", ms=4, label="visits")
        for fc, color, label in ((held, "tab:orange", "held-out forecast"),
                                 (out, "tab:blue", "forecast")):  # fmt: skip
            lo, hi = fc.interval(0.9)
            t = fc.time[i]
            ax.fill_between(t, lo[i], hi[i], color=color, alpha=0.25, lw=0)
            ax.plot(t, fc.mean[i], color=color, label=f"{label} (90% band)")
        ax.set_ylabel(str(panel.subject[i]))
    axes[0, 0].legend(fontsize=7)
    axes[-1, 0].set_xlabel("time")
    return fig


def run(root: Config, out_dir: Path) -> dict:
    r = compute(root, out_dir)
    skill, choice, twin = r["skill"], r["choice"], r["twin"]
    with r["timings"].phase("save"):
        save_auto(twin, out_dir / "model")
        frame = r["forecast"].frame()
        frame["time"] = pipeline.data_times(frame["time"], r["cohort"])
        frame.insert(3, "variable", r["target"])
        write_csv(frame.drop(columns=["y", "observed"]), out_dir / "forecasts.csv", index=False)
        write_csv(skill, out_dir / "skill.csv")
    metrics = {
        "family": "auto",
        "target": r["target"],
        "n_subjects": int(len(r["panel"].n)),
        "subjects_excluded": r["excluded"],
        "held_out_points": int(r["held"]["auto"].mask.sum()),
        "held_out_choice": choice.name,
        "skill": {m: row for m, row in skill.to_dict(orient="index").items()},
        "best_baseline": skill.attrs["best_baseline"],
        "auto_crps_vs_best_baseline": float(skill.loc["auto", "crps_vs_best_baseline"]),
        "final_choice": twin.choice["name"],
        "final_validation_crps": twin.choice["validation_crps"],
        # sweeps: the final twin's rolling-origin CRPS on the training visits (never the
        # held-out visits of the skill table)
        "objective": float(twin.choice["validation_crps"][twin.choice["name"]]),
    }
    with r["timings"].phase("report"):
        fig = plot(r["forecast"], r["panel"], r["held"]["auto"], root.experiment.n_plot_individuals)
        name = save_figure(fig, out_dir, "forecasts.png")
        cols = ["rmse", "mae", "crps", "coverage_90", "width_90", "crps_vs_best_baseline",
                "rmse_vs_best_baseline"]  # fmt: skip
        rows = [[m, *(f"{float(skill.loc[m, c]):.4g}" for c in cols)] for m in skill.index]
        crps = twin.choice["validation_crps"]
        write_markdown(out_dir, [
            f"# Auto twin of `{r['target']}`", "",
            f"{metrics['n_subjects']} subjects; each subject's last {root.model.holdout} visits "
            f"(1 for series shorter than 5) held out: {metrics['held_out_points']} points.", "",
            "## Skill on the held-out visits", "",
            *table(["method", *cols], rows), "", *verdict(skill), "",
            "## The twin", "",
            f"Chosen on all the visits by rolling-origin CRPS (the last 1-{root.model.origins} "
            f"visits of each subject forecast from those before): **{twin.choice['name']}** "
            "(one choice for the cohort; every subject's forecast is that combination, its "
            "interval scaled by the subject's own visit-to-visit variability).", "",
            *table(["candidate", "rolling-origin CRPS"],
                   [[k, f"{v:.4g}"] for k, v in sorted(crps.items(), key=lambda kv: kv[1])[:8]]),
            *(["", f"The best 8 of {len(crps)} candidates (each family, and the average of every "
               "pair and triple); all in `metrics.json` (`final_validation_crps`)."]
              if len(crps) > 8 else []),
            "", f"Forecasts of the next {root.data.horizon} visits: `forecasts.csv`.", "",
            *images([name]),
        ])  # fmt: skip
    metrics["timings"] = r["timings"].seconds
    return metrics


def is_auto(run_dir: Path) -> bool:
    """Whether ``run_dir`` (a run directory or its ``model/``) holds an auto twin."""
    return (run_dir / "auto.json").exists() or (run_dir / "model" / "auto.json").exists()


def requested_times(path, panel: Panel, data) -> tuple[Panel, np.ndarray]:
    """The subjects of ``path`` (a CSV or Parquet of ``data.subject_col``, ``data.time_col``
    rows) and their requested times ``[N, H]`` (in time order, NaN-padded to the longest list).

    Raises:
      ConfigError: a missing file or column, a non-numeric time, no subject with two visits
        in the data (others are left out with a warning, as in the run), or a time at or
        before the subject's last visit (naming them)."""
    path = Path(path)
    if not path.exists():
        raise pipeline.ConfigError(f"experiment.at={path}: no such file")
    table = pd.read_parquet(path) if path.suffix == ".parquet" else pd.read_csv(path)
    missing = [c for c in (data.subject_col, data.time_col) if c not in table.columns]
    if missing:
        raise pipeline.ConfigError(f"experiment.at={path}: no column(s) {missing} "
                                   f"(it has {list(table.columns)})")  # fmt: skip
    when = pd.to_numeric(table[data.time_col], errors="coerce")
    if when.isna().any():
        rows = [int(i) + 2 for i in np.flatnonzero(when.isna())[:5]]
        raise pipeline.ConfigError(f"experiment.at={path}, column {data.time_col!r}: lines {rows} "
                                   "hold no number (only numeric times are supported)")  # fmt: skip
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
    ids, when = ids[keep], when.to_numpy(float)[keep]
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
    cohort, target, panel, excluded = _panel(root)
    panel = panel._replace(period=twin.period)
    exp = root.experiment
    if exp.at is not None:
        panel, times = requested_times(exp.at, panel, root.data)
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
    fig = plot(fc, panel, fc, exp.n_plot_subjects)
    name = save_figure(fig, out_dir, "forecasts.png")
    write_markdown(out_dir, [
        f"# Forecasts of `{target}` from the auto twin in `{root.twin}`", "",
        f"{len(panel.n)} subjects, "
        + (f"at the times listed in `{exp.at}`" if exp.at is not None else
           f"the next {exp.horizon} visits each (spaced by the subject's median gap)")
        + f", by **{'+'.join(twin.members)}** with the saved per-horizon calibration (its "
        "spread scaled by the time elapsed); all in `forecasts.csv`.", "", *images([name]),
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
