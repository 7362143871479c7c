"""Bayesian PK twins of R's Theoph data: NUTS fit vs nlme fm3, calibration, personalized dosing;
the fit's ArviZ InferenceData in posterior.nc (:mod:`twinjax.bayes.idata`)."""

from __future__ import annotations

import time
from pathlib import Path

import jax
import jax.numpy as jnp
import matplotlib.pyplot as plt
import numpy as np

from twinjax.bayes import (
    diagnose,
    flatten_chains,
    hierarchical_inference_data,
    hierarchical_model,
    population_draws,
    posterior_predictive,
    problems_of,
    run_nuts,
    run_svi,
    svi_draws,
)
from twinjax.bayes.dosing import choose_dose, choose_dose_time, steady_state_profiles
from twinjax.bayes.plots import plot_coverage, plot_individual_fits, plot_pit_histogram
from twinjax.bayes.theoph import FM3, theoph_data, theoph_frames, theoph_spec
from twinjax.config import Config
from twinjax.eval.score import Forecast, coverage_curve, pit, score
from twinjax.pipeline import ConfigError
from twinjax.runtime.files import replacing
from twinjax.runtime.progress import progress
from twinjax_experiments.config import PkTheophylline
from twinjax_experiments.report import images, save_figure, table, write_markdown

LEVELS = (0.5, 0.6, 0.7, 0.8, 0.9, 0.95)


def run(cfg: Config, out_dir: Path) -> dict:
    c: PkTheophylline = cfg.experiment
    if cfg.data.source == "files":
        raise ConfigError(
            "experiment=pk_theophylline fits R's built-in Theoph data and cannot use data=files; "
            "fit your own files with experiment=hierarchical data=files data.observations=PATH "
            "data.interventions=PATH experiment.model=pk_oral (or pk_oral_ke, pk_iv)"
        )
    k_nuts, k_svi, k_pred, k_thin = jax.random.split(jax.random.key(cfg.seed), 4)
    start = time.perf_counter()
    data = theoph_data(weight_covariate=c.weight_covariate)
    spec = theoph_spec(
        prior_loc=c.prior_loc,
        prior_scale=c.prior_scale,
        weight_covariate=c.weight_covariate,
        correlated=c.correlated,
    )
    fit = run_nuts(
        hierarchical_model,
        k_nuts,
        spec,
        data,
        **c.nuts.kwargs(),
        progress=c.progress,
    )
    nuts_seconds = time.perf_counter() - start
    pop = population_draws(spec, fit.samples)
    diag = diagnose(pop, fit.num_divergences, energy=fit.sample_stats["energy"])
    idata = hierarchical_inference_data(
        spec, fit.samples, data, pop, key=jax.random.fold_in(k_pred, 1),
        sample_stats=fit.sample_stats, attrs={"model": "theoph_one_compartment_oral"},
    )  # fmt: skip
    with replacing(out_dir / "posterior.nc") as tmp:
        idata.to_netcdf(str(tmp))
    metrics = _population_metrics(pop, diag, nuts_seconds)

    flat = flatten_chains(fit.samples)
    keep = np.asarray(jax.random.permutation(k_thin, flat["theta"].shape[0]))
    flat = {k: v[keep[: c.predictive_draws]] for k, v in flat.items()}
    calibration, fits = _calibration(spec, flat, data, k_pred)
    dosing, dose_bands = _dosing(flat["theta"], c, data)
    metrics |= calibration | dosing
    if c.svi_steps:
        metrics.update(_svi(spec, data, k_svi, c))
    metrics["runtime_seconds"] = time.perf_counter() - start
    metrics["cpu_seconds"] = time.process_time()
    metrics["objective"] = metrics["in_sample_crps"]  # sweeps: no held-out data (in-sample)
    write_report(out_dir, c, metrics, data, pop, fits, dose_bands)
    return metrics


def _population_metrics(pop, diag, seconds) -> dict:
    m = {"nuts_seconds": seconds, "num_divergences": diag.num_divergences}
    m["num_chains"], m["num_draws_per_chain"] = diag.num_chains, diag.num_draws
    for name, draws in pop.items():
        q5, q95 = np.quantile(draws, [0.05, 0.95])
        m[f"posterior_mean_{name}"] = float(draws.mean())
        m[f"posterior_sd_{name}"] = float(draws.std())
        m[f"ci90_{name}"] = [float(q5), float(q95)]
        m[f"r_hat_{name}"] = diag.r_hat[name]
        m[f"ess_bulk_{name}"] = diag.ess_bulk[name]
        if name in FM3:
            m[f"fm3_{name}"] = FM3[name]
            m[f"abs_diff_vs_fm3_{name}"] = abs(float(draws.mean()) - FM3[name])
    fixed = ("lKe", "lKa", "lCl")
    m["max_abs_diff_fixed_effects_vs_fm3"] = max(m[f"abs_diff_vs_fm3_{p}"] for p in fixed)
    m["fixed_effects_within_0.1_of_fm3"] = m["max_abs_diff_fixed_effects_vs_fm3"] < 0.1
    m["max_r_hat_population"] = max(diag.r_hat.values())
    m["min_ess_bulk_population"] = min(diag.ess_bulk.values())
    m["all_population_r_hat_below_1.01"] = m["max_r_hat_population"] < 1.01
    m["population_parameters"] = list(pop)
    m["diagnostic_problems"] = problems_of(diag)
    return m


def _calibration(spec, flat, data, key) -> tuple[dict, dict]:
    """In-sample posterior predictive check of the observations; what the fit figures show."""
    pp = posterior_predictive(spec, flat, data.times, data.regimen, key=key)
    draws, mask = np.asarray(pp.observations, np.float64), np.asarray(data.mask, bool)
    fc = Forecast(mean=draws.mean(0), draws=draws, y=np.asarray(data.values), mask=mask)
    s = score(fc)
    grid = np.tile(np.linspace(0.0, 25.0, 101), (data.times.shape[0], 1))
    band = posterior_predictive(spec, flat, jnp.asarray(grid), data.regimen, key=key)
    out = {
        "in_sample_coverage_90": s["pooled"]["coverage_90"], "in_sample_crps": s["pooled"]["crps"],
        "in_sample_pit_ks": s["pit"]["ks"], "in_sample_n_points": s["pooled"]["n"],
        "in_sample_coverage_by_level": {str(k): v for k, v in coverage_curve(fc, LEVELS).items()},
    }  # fmt: skip
    fits = {"pit": pit(fc)[mask], "grid": grid, "band": np.asarray(band.observations)}
    return out, fits


def _dosing(theta, c: PkTheophylline, data) -> tuple[dict, np.ndarray]:
    """Per subject: the dose every ``dose_interval`` h maximizing P(steady state in window);
    the steady-state concentration draws at that dose [draws, subjects, time]."""
    _, _, cov = theoph_frames()
    weight = dict(zip(cov["subject"], cov["Wt"], strict=True))
    rows, bands = [], []
    bar = progress(len(data.subject_ids), desc="dosing", enabled=c.progress)
    for i, s in enumerate(data.subject_ids):
        choice = choose_dose(
            theta[:, i], interval=c.dose_interval, low=c.target_low, high=c.target_high
        )
        timed = choose_dose_time(
            theta[:, i], interval=c.dose_interval, low=c.target_low, high=c.target_high
        )
        profile = np.asarray(steady_state_profiles(jnp.asarray(theta[:, i]), c.dose_interval))
        bands.append(choice.dose * profile)
        rows.append(
            {
                "subject": int(s),
                "dose_mg_per_kg": choice.dose,
                "dose_mg": choice.dose * weight[s],
                "probability_in_window": choice.probability,
                "peak_to_trough_ratio_median": float(np.median(timed.peak_to_trough)),
                "time_in_window_dose_mg_per_kg": timed.dose,
                "time_in_window_dose_mg": timed.dose * weight[s],
                "expected_fraction_of_time_in_window": timed.expected_fraction,
            }
        )
        bar.update()
    bar.close()
    probs = [r["probability_in_window"] for r in rows]
    summary = {
        "dosing": rows,
        "dosing_interval_hours": c.dose_interval,
        "dosing_window_mg_per_L": [c.target_low, c.target_high],
        "dosing_mean_probability_in_window": float(np.mean(probs)),
        "dosing_min_probability_in_window": float(np.min(probs)),
        "dosing_mean_expected_fraction_of_time_in_window": float(
            np.mean([r["expected_fraction_of_time_in_window"] for r in rows])
        ),
    }
    return summary, np.stack(bands, 1)


def _svi(spec, data, key, c: PkTheophylline) -> dict:
    k_fit, k_draw = jax.random.split(key)
    start = time.perf_counter()
    res = run_svi(hierarchical_model, k_fit, spec, data, steps=c.svi_steps, lr=0.01)
    draws = svi_draws(res, k_draw, spec, data, num_samples=1000)
    pop = population_draws(spec, draws)
    out = {f"svi_posterior_mean_{k}": float(v.mean()) for k, v in pop.items()}
    out["svi_seconds"] = time.perf_counter() - start
    out["svi_final_elbo_loss"] = float(res.losses[-1])
    return out


def write_report(out_dir: Path, c: PkTheophylline, m: dict, data, pop, fits, dose_bands):
    """The fit, calibration, forest and dosing figures and report.md."""
    plot_pit_histogram(out_dir / "pit_histogram.png", fits["pit"], title="Theoph: in-sample PIT")
    plot_coverage(out_dir / "coverage.png", LEVELS, list(m["in_sample_coverage_by_level"].values()),
                  title="Theoph: interval coverage")  # fmt: skip
    plot_individual_fits(
        out_dir / "individual_fits.png", fits["grid"], fits["band"], data.times, data.values,
        data.mask, names=[f"subject {s}" for s in data.subject_ids], ylabel="conc (mg/L)",
        title="Theoph: posterior predictive 90% bands",
    )  # fmt: skip
    forest = save_figure(_forest(pop), out_dir, "population_vs_fm3.png")
    dosing = save_figure(_dosing_figure(m["dosing"], dose_bands, c), out_dir,
                         "dosing_steady_state.png")  # fmt: skip
    write_markdown(out_dir, [
        *_population_lines(m, c),
        "",
        "## Calibration (in-sample posterior predictive of the 132 observations)",
        "",
        f"90% interval coverage {m['in_sample_coverage_90']:.3f}, mean CRPS "
        f"{m['in_sample_crps']:.3f} mg/L, PIT KS distance {m['in_sample_pit_ks']:.3f}.",
        "",
        *images(["individual_fits.png", "pit_histogram.png", "coverage.png", forest]),
        "",
        *_dosing_lines(m, c),
        "",
        *images([dosing]),
        "",
        *_svi_lines(m, c),
        f"Total runtime {m['runtime_seconds']:.1f} s.",
    ])  # fmt: skip


def _forest(pop):
    names = [n for n in pop if n in FM3]
    fig, ax = plt.subplots(figsize=(5.5, 0.5 * len(names) + 1.2))
    for j, n in enumerate(names):
        lo, mid, hi = np.quantile(pop[n], [0.05, 0.5, 0.95])
        ax.plot([lo, hi], [j, j], "C0-", lw=2)
        ax.plot(mid, j, "C0o", label="posterior median, 90% CI" if j == 0 else None)
        ax.plot(FM3[n], j, "rx", ms=9, label="nlme fm3" if j == 0 else None)
    ax.set_yticks(range(len(names)), names)
    ax.legend(fontsize=8)
    ax.set_title("Population parameters: NUTS vs published fm3")
    return fig


def _dosing_figure(rows, bands, c: PkTheophylline):
    t = np.linspace(0.0, c.dose_interval, bands.shape[-1])
    n = len(rows)
    cols = min(4, n)
    r = int(np.ceil(n / cols))
    fig, axes = plt.subplots(r, cols, figsize=(3.2 * cols, 2.4 * r), squeeze=False)
    for i, ax in enumerate(axes.flat):
        if i >= n:
            ax.axis("off")
            continue
        lo, med, hi = np.quantile(bands[:, i], [0.05, 0.5, 0.95], axis=0)
        ax.axhspan(c.target_low, c.target_high, color="g", alpha=0.12)
        ax.fill_between(t, lo, hi, alpha=0.35)
        ax.plot(t, med, lw=1.2)
        row = rows[i]
        ax.set_title(
            f"subj {row['subject']}: {row['dose_mg']:.0f} mg, P={row['probability_in_window']:.2f}",
            fontsize=8,
        )
        ax.set_xlabel("hours after dose (steady state)", fontsize=7)
    fig.suptitle(f"Steady state, oral dose every {c.dose_interval:g} h: 90% band")
    return fig


def _population_lines(m: dict, c: PkTheophylline) -> list[str]:
    def row(p):
        lo, hi = m[f"ci90_{p}"]
        ref = [f"{m[f'fm3_{p}']:.4f}", f"{m[f'abs_diff_vs_fm3_{p}']:.4f}"]
        return [p, f"{m[f'posterior_mean_{p}']:.4f}", f"[{lo:.3f}, {hi:.3f}]",
                f"{m[f'r_hat_{p}']:.4f}", f"{m[f'ess_bulk_{p}']:.0f}",
                *(ref if f"fm3_{p}" in m else ["-", "-"])]  # fmt: skip

    return [
        "# Bayesian PK twins of Theoph (one-compartment, first-order absorption)",
        "",
        f"NUTS: {m['num_chains']} vectorized chains x {m['num_draws_per_chain']} draws "
        f"({c.nuts.num_warmup} warm-up), {m['nuts_seconds']:.1f} s; divergences: "
        f"{m['num_divergences']}; max R-hat {m['max_r_hat_population']:.4f}; "
        f"min bulk ESS {m['min_ess_bulk_population']:.0f}.",
        "",
        *table(["parameter", "posterior mean", "90% CI", "R-hat", "bulk ESS", "nlme fm3",
                "|diff|"], map(row, m["population_parameters"])),
        "",
        f"Fixed effects within 0.1 of fm3: **{m['fixed_effects_within_0.1_of_fm3']}** "
        f"(max |diff| {m['max_abs_diff_fixed_effects_vs_fm3']:.4f}). fm3 is a maximum-likelihood "
        "fit (Pinheiro and Bates 2000); ours is the posterior mean under weak priors.",
        "",
        "Diagnostics problems: " + ("; ".join(m["diagnostic_problems"]) or "none") + ".",
    ]  # fmt: skip


def _dosing_lines(m: dict, c: PkTheophylline) -> list[str]:
    rows = [
        [r["subject"], f"{r['dose_mg_per_kg']:.2f}", f"{r['dose_mg']:.0f}",
         f"{r['probability_in_window']:.3f}", f"{r['peak_to_trough_ratio_median']:.2f}",
         f"{r['time_in_window_dose_mg']:.0f}", f"{r['expected_fraction_of_time_in_window']:.3f}"]
        for r in m["dosing"]
    ]  # fmt: skip
    return [
        f"## Personalized dosing: oral every {c.dose_interval:g} h, steady state in "
        f"[{c.target_low:g}, {c.target_high:g}] mg/L",
        "",
        "The dose maximizes the posterior probability that the noise-free steady-state "
        "concentration stays inside the window over the whole interval (exact search).",
        "",
        "Steady-state peak/trough ratios above "
        f"{c.target_high / c.target_low:g} make the whole-interval target unreachable for most "
        "subjects at this interval, so the second block gives the dose that maximizes the expected "
        "fraction of the interval spent in the window.",
        "",
        *table(["subject", "dose (mg/kg)", "dose (mg)", "P(whole interval in window)",
                "median peak/trough", "time-in-window dose (mg)",
                "E[fraction of time in window]"], rows),
    ]  # fmt: skip


def _svi_lines(m: dict, c: PkTheophylline) -> list[str]:
    if "svi_seconds" not in m:
        return []
    svi = ", ".join(
        f"{k.removeprefix('svi_posterior_mean_')} {v:.3f}"
        for k, v in m.items()
        if k.startswith("svi_posterior_mean_")
    )
    return [f"SVI (AutoNormal, {c.svi_steps} steps, {m['svi_seconds']:.1f} s): {svi}.", ""]
