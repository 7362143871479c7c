"""Glucose digital twins for type-1 diabetes (issue #13): forecasts, identification, closed loop.

A virtual cohort (``per_group`` patients of each age group of the UVa/Padova simulator, ``days``
days of randomized meals under their clinical basal-bolus settings, a noisy Dexcom CGM every
3 minutes) is simulated by :mod:`twinjax.physiology` and written as long-format Parquet under
``cohort/`` (so ``data=files`` reads the same records). Every twin learns from the first
``train_days`` days only and is scored by :mod:`twinjax.glucose.scoring`: forecasts at
30 and 60 minutes from origins every ``every`` minutes of the held-out days, given the recorded
carbohydrates and insulin of the periods ahead; RMSE and 90% coverage by age group.

Twins: (a) the recurrent twin, population and personalized (:mod:`twinjax.pipeline`), on a
``grid``-minute grid; (b) the Bayesian mechanistic twin identified from the first ``fit_days``
days (:func:`twinjax.glucose.identify`; ``twin``: ``mechanistic``, hierarchical SVI over six
UVa/Padova parameters per patient, or ``population``, all 23 under the population prior;
intervals widened on the remaining training days); (c) the hybrid, (b) plus a learned residual;
(d) the recurrent twin trained federated (clients = patients: FedAdam rounds, then local
fine-tuning on each patient's own windows; no record leaves its patient); and a last-value
baseline. (b)'s parameter recovery (every parameter it estimates) is scored against the
simulator's table (which the twin never sees).

Then the closed loop (``closed_loop_days`` > 0, needs the ``glucose`` extra): simglucose runs
each patient on held-out meal days twice, with the twin advisor (the bolus that maximizes (b)'s
expected time in range under a chance constraint on time below 70) and with its own
``BBController``; outcomes per patient and age group.
"""

from __future__ import annotations

import dataclasses
import logging
from pathlib import Path

import jax
import matplotlib.pyplot as plt
import numpy as np

from twinjax import federated as fl
from twinjax import pipeline
from twinjax.adapters import federated_twins as ft
from twinjax.bayes.idata import loo_summary
from twinjax.config import Config
from twinjax.federated.loop import run_rounds
from twinjax.glucose import (
    Advisor,
    MechanisticFit,
    calibration_scale,
    fit_hybrid,
    forecast_hybrid,
    forecast_mechanistic,
    identify,
    mechanistic_inference_data,
    outcomes_by_group,
    plot_closed_loop,
    records,
    recovery,
    recovery_coverage,
    run_closed_loop,
    scoring,
    twin_paths,
)
from twinjax.glucose.intervals import interval_scale, widen
from twinjax.glucose.keys import run_keys
from twinjax.glucose.recurrent import Sampled, sample_forecasts
from twinjax.physiology import Sensor, patient_names, simulate_cohort, write_cohort
from twinjax.physiology.params import age_group
from twinjax.runtime.files import replacing
from twinjax.twins import init_params
from twinjax_experiments.config import GlucoseTwins
from twinjax_experiments.report import images, save_figure, table, write_csv, write_markdown

log = logging.getLogger(__name__)


def chosen_patients(per_group: int) -> list[str]:
    """The first ``per_group`` patients of each age group, in table order."""
    names = patient_names()
    groups = sorted({age_group(n) for n in names})
    if not 1 <= per_group <= 10:
        raise pipeline.ConfigError(f"experiment.per_group={per_group}: use 1 to 10")
    return [n for g in groups for n in [m for m in names if age_group(m) == g][:per_group]]


def twin_config(cfg: Config, c: GlucoseTwins) -> Config:
    """The app config with the CGM grid's data settings: ``context`` periods of history, one
    step ahead; the last training day validates (calibration), the held-out days are the test
    segment (never trained on)."""
    data = dataclasses.replace(
        cfg.data, context=c.context, horizon=1, normalization="population",
        val_fraction=1.0 / c.days, test_fraction=(c.days - c.train_days) / c.days,
    )  # fmt: skip
    return dataclasses.replace(cfg, data=data)


def recurrent_forecasts(key, params, fit, coarse, factor, at, val_at, c, *, personal):
    """Protocol forecasts of a recurrent twin on its coarse grid (``at``, ``val_at``: CGM
    cells, multiples of the coarsening factor), intervals widened on the last training day."""
    both = np.concatenate([val_at, at]) // factor  # one call: one compilation
    common = dict(step=coarse.step, history=c.context, personal=personal, draws=c.draws)
    paths = sample_forecasts(
        key, params, fit.spec, fit.arrays, fit.scalers.values, both, **common
    ).draws
    val, test = Sampled(paths[:, : len(val_at)]), Sampled(paths[:, len(val_at) :])
    y_val = scoring.targets(coarse.values[..., 0], val_at // factor, step=coarse.step)
    scale = interval_scale(val.summary(), y_val, pooled=True)  # one day: pooled over patients
    return widen(test.summary(), scale), scale[0]


def federated_personal(key, spec, arrays, c: GlucoseTwins):
    """(d): FedAdam over the patients, then each patient fine-tunes the global twin on its own
    windows; returns the personal twins (leading patients axis) and the round history."""
    k_init, k_fed, k_tune = jax.random.split(key, 3)
    data = ft.window_client_data(arrays, length=c.context + 1, stride=c.window_stride)
    loss = ft.twin_loss(spec)
    algo = fl.fedadam(
        loss, server_lr=c.server_lr, clients_per_round=min(c.clients_per_round, data.num_clients),
        local_lr=c.local_lr, batch_size=c.batch_size, local_epochs=c.local_epochs,
        weighting="samples",
    )  # fmt: skip
    state = algo.init(init_params(k_init, spec), num_clients=data.num_clients)
    state, hist = run_rounds(
        algo, state, data, k_fed, rounds=c.rounds, progress=c.progress, desc="federated twins"
    )
    tuned = fl.fine_tune(loss, state.params, data, k_tune, epochs=c.fine_tune_epochs,
                         learning_rate=c.local_lr, batch_size=c.batch_size)  # fmt: skip
    return tuned, hist


def run(cfg: Config, out_dir: Path) -> dict:
    c: GlucoseTwins = cfg.experiment
    _check_options(cfg, c)
    timings = pipeline.Timings()
    k_cohort, k_rec, k_fed, k_fc, k_mech, k_mech_fc, k_loop = run_keys(cfg.seed)
    names = chosen_patients(c.per_group)
    with timings.phase("cohort"):
        cohort = simulate_cohort(k_cohort, names, c.days)
        write_cohort(cohort, out_dir / "cohort")
    factor, at, val_at = _origins(cohort, c)
    y = scoring.targets(cohort.values[..., 0], at, step=cohort.step)
    fc = {"last value": scoring.last_value(cohort.values[..., 0], at, step=cohort.step,
                                           train_days=c.train_days)}  # fmt: skip
    coarse = cohort.coarsen(factor)  # the recurrent twins' grid
    twin_cfg = twin_config(cfg, c)
    fit = pipeline.fit_twins(k_rec, coarse, twin_cfg, out_dir, timings=timings)
    recurrent, widening = _recurrent_forecasts(
        (k_fc, k_fed), fit, coarse, factor, at, val_at, c, timings
    )
    fc |= recurrent
    recs = records(cohort)
    twin, svi, hybrid, mechanistic, widening[MECHANISTIC] = _mechanistic_forecasts(
        (k_mech, k_mech_fc), recs, at, c, timings
    )
    fc |= mechanistic
    with timings.phase("mechanistic posterior"):
        posterior = write_posterior(out_dir, twin, svi, jax.random.fold_in(k_mech, 1))
    rec = recovery(twin)
    write_csv(rec, out_dir / "parameter_recovery.csv", index=False)
    coverage = recovery_coverage(rec)
    loop = None
    if c.closed_loop_days > 0:
        with timings.phase("closed loop"):
            loop = run_closed_loop(
                twin, names, c.closed_loop_days, k_loop, out_dir / "closed_loop",
                processes=c.processes, show_progress=c.progress, advisor=advisor(c),
            )  # fmt: skip
    groups = [age_group(n) for n in names]
    metrics = _metrics(c, names, groups, cohort, at, y, fc, widening, twin, svi, hybrid, coverage)
    # sweeps: the personalized recurrent twins' one-step NLL on the last training day
    metrics["objective"] = pipeline.validation_objective(fit, coarse, twin_cfg.data)
    metrics["mechanistic"]["posterior"] = posterior
    if loop is not None:
        metrics["closed_loop"] = closed_loop_metrics(loop)
    with timings.phase("report"):
        write_report(out_dir, c, metrics, cohort, fc, at, groups, rec, coverage)
    metrics["timings"] = timings.seconds
    return metrics


MECHANISTIC = "(b) Bayesian mechanistic"


def advisor(c: GlucoseTwins) -> Advisor:
    return Advisor(quantile=c.advisor_quantile, max_increase=c.advisor_max_increase,
                   max_residual=c.advisor_max_residual)  # fmt: skip


def write_posterior(out_dir: Path, twin, fit, key) -> dict | None:
    """(b)'s fit as ArviZ InferenceData in posterior.nc (SVI: one chain, no sample_stats) and
    its PSIS-LOO over the fitted CGM readings, with the problems ArviZ finds; None for the
    population twin (no InferenceData export of its fit yet)."""
    if not isinstance(fit, MechanisticFit):
        return None
    idata = mechanistic_inference_data(twin, fit, key=key)
    with replacing(out_dir / "posterior.nc") as tmp:
        idata.to_netcdf(str(tmp))
    loo, problems = loo_summary(idata)
    return {"file": "posterior.nc", "loo": loo, "problems": problems}


def _check_options(cfg: Config, c: GlucoseTwins) -> None:
    if cfg.data.source != "synthetic":
        raise pipeline.ConfigError(
            "experiment=glucose_twins simulates its own cohort (and writes it under cohort/, "
            "which data=files then reads with the default experiment); it takes no data=files"
        )
    if not 1 <= c.train_days < c.days:
        raise pipeline.ConfigError(
            f"experiment.train_days={c.train_days} must be at least 1 and below days={c.days}"
        )


def _origins(cohort, c: GlucoseTwins) -> tuple[int, np.ndarray, np.ndarray]:
    """The recurrent twins' grid (a multiple of the cohort's step), the forecast origins, and
    the origins on the last training day whose targets stay inside it (interval widening)."""
    step = cohort.step
    factor = int(round(c.grid / step))
    if factor < 1 or abs(factor * step - c.grid) > 1e-9:
        raise pipeline.ConfigError(f"experiment.grid={c.grid} must be a multiple of {step} min")
    at = scoring.origins(cohort.n_steps, step=step, train_days=c.train_days, every=c.every)
    val_at = scoring.day_origins(
        cohort.n_steps, step=step, start_days=c.train_days - 1, end_days=c.train_days, every=c.every
    )
    if (at % factor).any() or (val_at % factor).any():
        raise pipeline.ConfigError(
            f"forecast origins (every {c.every:g} min from day {c.train_days:g}) must fall on "
            f"the recurrent twins' {c.grid:g}-minute grid"
        )
    return factor, at, val_at


def _recurrent_forecasts(keys, fit, coarse, factor, at, val_at, c: GlucoseTwins, timings):
    """(a) the recurrent twins, population and personalized, and (d) the federated personal
    ones: their forecasts and interval widening, by method."""
    k_fc, k_fed = keys
    k_pop, k_per, k_fd = jax.random.split(k_fc, 3)
    fc, widening = {}, {}
    with timings.phase("recurrent forecasts"):
        for name, params, personal, k in (
            ("(a) recurrent population", fit.population, False, k_pop),
            ("(a) recurrent personalized", fit.personal, True, k_per),
        ):
            fc[name], widening[name] = recurrent_forecasts(
                k, params, fit, coarse, factor, at, val_at, c, personal=personal
            )  # fmt: skip
    with timings.phase("federated fit"):
        tuned, _ = federated_personal(k_fed, fit.spec, fit.arrays, c)
    with timings.phase("federated forecasts"):
        name = "(d) federated personalized"
        fc[name], widening[name] = recurrent_forecasts(
            k_fd, tuned, fit, coarse, factor, at, val_at, c, personal=True
        )
    return fc, widening


def _mechanistic_forecasts(keys, recs, at, c: GlucoseTwins, timings):
    """(b) the Bayesian mechanistic twin (``c.twin``) and (c) the hybrid: the twin, its fit,
    the hybrid, their forecasts by method and (b)'s median interval widening."""
    k_mech, k_mech_fc = keys
    with timings.phase("mechanistic fit"):
        twin, svi = identify(
            k_mech, recs, twin=c.twin, fit_days=c.fit_days, draws=c.mechanistic_draws,
            svi_steps=c.svi_steps, svi_lr=c.svi_lr, mode_steps=c.population_mode_steps,
            steps=c.population_steps, starts=c.population_starts, progress=c.progress,
        )  # fmt: skip
        paths = twin_paths(twin, recs)
    with timings.phase("mechanistic forecasts"):
        k_cal, k_test = jax.random.split(k_mech_fc)
        scale = calibration_scale(
            k_cal, twin, recs, start_days=c.fit_days, end_days=c.train_days, paths=paths
        )
        fc = {MECHANISTIC: widen(forecast_mechanistic(k_test, twin, recs, at, paths=paths), scale)}
        hybrid = fit_hybrid(twin, recs, paths, train_days=c.train_days, start_days=c.fit_days,
                            calib_days=c.hybrid_calib_days)  # fmt: skip
        fc["(c) hybrid"] = forecast_hybrid(hybrid, twin, recs, paths, at)
    return twin, svi, hybrid, fc, np.median(scale, 0)


def _metrics(c, names, groups, cohort, at, y, fc, widening, twin, svi, hybrid, coverage) -> dict:
    per = {m: scoring.score(f, y) for m, f in fc.items()}
    floor = floor_patients(cohort, Sensor.named("Dexcom").lo, first=int(at[0]))
    return {
        "patients": names,
        "days": c.days,
        "train_days": c.train_days,
        "origins_per_patient": len(at),
        "forecasts": {m: scoring.by_group(s, groups) for m, s in per.items()},
        "per_patient": {m: {k: v.tolist() for k, v in s.items()} for m, s in per.items()},
        "interval_widening": {m: np.asarray(w).tolist() for m, w in widening.items()},
        "federated_rounds": c.rounds,
        # patients whose held-out CGM mostly sits at the sensor's floor (simglucose's own
        # basal-bolus settings drive some into glucose near 0): their readings are trivially
        # forecast, so "all but these" rows are given too
        "patients_at_sensor_floor": floor,
        "forecasts_without_floor_patients": {
            m: scoring.by_group(
                {k: v[[n not in floor for n in names]] for k, v in s.items()},
                [g for g, n in zip(groups, names, strict=True) if n not in floor],
            )["all"]
            for m, s in per.items()
        }
        if floor and len(floor) < len(names)
        else {},
        "mechanistic": {
            "twin": c.twin,
            "estimated": list(twin.estimated),
            # the mean loss of the last 20 steps: the cohort's -ELBO (mechanistic) or the
            # patients' mean -ELBO (population)
            "svi_final_loss": float(np.mean(np.asarray(svi.losses)[-20:])),
            "recovery": coverage.reset_index().to_dict(orient="records"),
            # (c)'s per-patient choice on the held-back days, counted per horizon
            "hybrid_choice": {
                f"{h}min": hybrid_choices(np.asarray(hybrid.lam)[:, j])
                for j, h in enumerate(scoring.HORIZONS)
            },
        },
    }


def hybrid_choices(lam: np.ndarray) -> dict[str, int]:
    """How many patients took each residual correction: a shrinkage ``lambda`` toward the
    pooled coefficients, the pooled ones (inf) or none (nan)."""
    label = lambda v: "none" if np.isnan(v) else "pooled" if np.isinf(v) else f"lambda={v:g}"
    names = [label(v) for v in lam]
    return {k: names.count(k) for k in sorted(set(names))}


def floor_patients(cohort, floor: float, *, first: int, share: float = 0.25) -> dict:
    """``{patient: fraction}`` of those whose CGM reads the sensor's floor (its lowest value)
    at ``share`` or more of the readings from cell ``first`` on."""
    at_floor = (cohort.values[:, first:, 0] <= floor + 1e-3).mean(1)
    return {n: float(f) for n, f in zip(cohort.subject_ids, at_floor, strict=True) if f >= share}


def closed_loop_metrics(loop) -> dict:
    """Outcomes per age group and controller, the per-patient table, and the verdict the issue
    asks for: in each age group, does the advisor raise time in range by 0.02 or more without
    raising time below 70 or below 54?"""
    by = outcomes_by_group(loop)
    groups = sorted({g for g, _ in by.index})
    out = {"by_group": {g: {ctl: by.loc[(g, ctl)].to_dict() for ctl in ("twin", "bb")}
                        for g in groups}}  # fmt: skip
    out["per_patient"] = loop.to_dict(orient="records")
    out["advisor_raises_tir_without_more_hypo"] = {
        g: bool(v["twin"]["tir"] >= v["bb"]["tir"] + 0.02
                and v["twin"]["below70"] <= v["bb"]["below70"]
                and v["twin"]["below54"] <= v["bb"]["below54"])
        for g, v in out["by_group"].items()
    }  # fmt: skip
    return out


def forecast_table(forecasts: dict) -> list[str]:
    """One row per twin and age group: RMSE and 90% coverage at each horizon."""
    header = ["twin", "age group"] + [
        f"{m} {h} min" for h in scoring.HORIZONS for m in ("RMSE", "cov90")
    ]
    rows = []
    for twin, by in forecasts.items():
        for g, v in by.items():
            cells = [f"{v[f'{m}_{h}min']:.3g}" for h in scoring.HORIZONS
                     for m in ("rmse", "coverage90")]  # fmt: skip
            rows.append([twin, g, *cells])
    return table(header, rows)


def plot_bands(out_dir: Path, cohort, fc: dict, at: np.ndarray, groups: list[str], n: int):
    """CGM on the first held-out day with each twin's 30-minute forecasts (mean and 90% band at
    the times they forecast), ``n`` patients per age group."""
    step, k = cohort.step, int(round(scoring.HORIZONS[0] / cohort.step))
    day = at[at < at[0] + int(1440 / step)]
    rows = [i for g in sorted(set(groups)) for i in [j for j, h in enumerate(groups) if h == g][:n]]
    twins = [m for m in fc if m != "last value"]
    fig, axes = plt.subplots(len(rows), 1, figsize=(11, 2.8 * len(rows)), squeeze=False)
    for ax, i in zip(axes[:, 0], rows, strict=True):
        t = np.arange(day[0], day[-1] + k + 1)
        ax.plot(t * step / 60, cohort.values[i, t, 0], "k.", ms=2, label="CGM")
        for m in twins:
            j = np.arange(len(day))
            hours = (day + k) * step / 60
            line = ax.plot(hours, fc[m].mean[i, j, 0], lw=1, label=m)[0]
            ax.fill_between(hours, fc[m].lo[i, j, 0], fc[m].hi[i, j, 0], alpha=0.15,
                            color=line.get_color())  # fmt: skip
        ax.axhspan(70, 180, color="green", alpha=0.05)
        ax.set_title(f"{cohort.subject_ids[i]}: 30-minute forecasts (90% bands)", fontsize=9)
        ax.set_ylabel("mg/dL")
    axes[-1, 0].set_xlabel("hours from the start of the records")
    axes[0, 0].legend(fontsize=7, ncol=3)
    return save_figure(fig, out_dir, "forecast_bands.png")


def floor_lines(m: dict) -> list[str]:
    """A warning naming the patients whose CGM sits at the sensor floor, with the 'all' row
    of each twin without them."""
    floor = m["patients_at_sensor_floor"]
    if not floor:
        return []
    names = ", ".join(f"{n} ({f:.0%} of held-out readings)" for n, f in floor.items())
    lines = [
        f"**Warning:** CGM at the sensor's floor (39 mg/dL) for {names}: their glucose falls to "
        "near 0 under their clinical basal-bolus settings (simglucose does the same: child#008 "
        "on the cohort's meals, 0.002 mg/dL from twinjax over 3 days), so their readings are "
        "trivially forecast. Without them:", "",
    ]  # fmt: skip
    rest = m["forecasts_without_floor_patients"]
    header = ["twin"] + [f"{k} {h} min" for h in scoring.HORIZONS for k in ("RMSE", "cov90")]
    rows = [[t, *[f"{v[f'{k}_{h}min']:.3g}" for h in scoring.HORIZONS
                  for k in ("rmse", "coverage90")]] for t, v in rest.items()]  # fmt: skip
    return [*lines, *table(header, rows), ""]


def recovery_lines(rec, coverage) -> list[str]:
    """Coverage per parameter, then true vs posterior per patient."""
    cov = coverage.reset_index()
    lines = table(
        ["parameter", *[k for k in cov.columns if k != "parameter"]],
        [[r["parameter"], *[f"{r[k]:.3g}" for k in cov.columns if k != "parameter"]]
         for _, r in cov.iterrows()],
    )  # fmt: skip
    per = table(
        ["patient", "parameter", "true", "posterior mean", "90% interval", "inside"],
        [[r.subject_id, r.parameter, f"{r.true:.4g}", f"{r.mean:.4g}",
          f"{r.lo:.4g} to {r.hi:.4g}", "yes" if r.inside else "no"] for r in rec.itertuples()],
    )  # fmt: skip
    return [*lines, "", "<details><summary>per patient</summary>", "", *per, "", "</details>"]


def posterior_lines(post: dict | None) -> list[str]:
    """Where (b)'s InferenceData is and ArviZ's verdict on it (SVI: no MCMC diagnostics)."""
    if post is None:
        return ["The population twin's fit is not exported as ArviZ InferenceData (no "
                "`posterior.nc`; the export reads the mechanistic twin's SVI sites)."]  # fmt: skip
    loo = post["loo"]
    return [
        f"(b)'s fit as ArviZ InferenceData: `{post['file']}` (the guide's draws as one chain; "
        "no sample_stats, SVI has none; each fitted CGM reading's log-likelihood and one-step "
        "posterior predictive by patient and minute; meals and insulin as constant data). MCMC "
        f"diagnostics do not apply to SVI. PSIS-LOO (ArviZ): elpd {loo['elpd_loo']:.1f} (SE "
        f"{loo['se']:.1f}) over {loo['n_observations']} readings. Problems: "
        + ("; ".join(post["problems"]) or "none")
        + ".",
    ]


def closed_loop_lines(out_dir: Path, m: dict, groups: list[str], names: list[str]):
    """Tables of the closed loop by age group and per patient, and one trace per age group."""
    loop = m["closed_loop"]
    cols = ("tir", "below70", "below54", "above180", "lbgi", "hbgi")
    head = ["age group", "controller", "TIR 70-180", "<70", "<54", ">180", "LBGI", "HBGI"]
    rows = [[g, ctl, *[f"{v[ctl][k]:.3f}" for k in cols]]
            for g, v in loop["by_group"].items() for ctl in ("twin", "bb")]  # fmt: skip
    verdict = loop["advisor_raises_tir_without_more_hypo"]
    deferred = lambda r: (
        "" if r["controller"] != "twin" else f"{r['deferred']:.0f} / {r['advised']:.0f}"
    )
    per = [[r["patient"], r["controller"], *[f"{r[k]:.3f}" for k in cols], deferred(r)]
           for r in loop["per_patient"]]  # fmt: skip
    figs = []
    for g in sorted(set(groups)):
        name = names[groups.index(g)]
        fig = plot_closed_loop(out_dir / "closed_loop" / "traces" / f"{name}.npz")
        figs.append(save_figure(fig, out_dir, f"closed_loop_{g}.png"))
    return [
        *table(head, rows), "",
        "Advisor raises time in range by 0.02 or more without raising time below 70 or 54: "
        + ", ".join(f"{g} **{'yes' if v else 'no'}**" for g, v in verdict.items()) + ".",
        "", "<details><summary>per patient</summary>", "",
        *table(["patient", *head[1:], "deferred / advised"], per), "", "</details>", "",
        *images(figs),
    ]  # fmt: skip


# what the recovery section says of (b), by twin (the default's text is the one it always had)
RECOVERY_NOTE = {
    "mechanistic": "The scorer's truth is the simulator's table; the twin saw only the records "
    "(its other parameters sit at the leave-one-out median of the patient's age group, so model "
    "error is part of what it absorbs).",
    "population": "(b) is the population twin. The scorer's truth is the simulator's table; the "
    "twin saw only the records (every parameter is estimated under the population prior: the "
    "patient's age group's leave-one-out mean and within-group covariance).",
}


def write_report(out_dir: Path, c: GlucoseTwins, m: dict, cohort, fc, at, groups, rec,
                 coverage) -> None:  # fmt: skip
    figs = [plot_bands(out_dir, cohort, fc, at, groups, c.n_plot_patients)]
    lines = [
        "# Glucose digital twins (UVa/Padova virtual cohort)",
        "",
        f"{len(m['patients'])} patients x {c.days} days of CGM (3-min Dexcom model with noise), "
        f"meals and insulin under their basal-bolus settings, simulated by twinjax.physiology "
        f"(records in `cohort/`). Twins learn from days 0-{c.train_days:g}; forecasts from "
        f"{m['origins_per_patient']} origins per patient (every {c.every:g} min of the "
        f"held-out days), given the recorded carbohydrates and insulin ahead.",
        "",
        "## CGM forecasts: RMSE (mg/dL) and 90% interval coverage",
        "",
        *forecast_table(m["forecasts"]),
        "",
        *floor_lines(m),
        "Recurrent intervals are the sample paths' 5-95% quantiles widened per horizon on the "
        "last training day: " + ", ".join(
            f"{k} x{'/'.join(f'{w:.2f}' for w in v)}" for k, v in m["interval_widening"].items()
        ) + ".",
        "",
        *images(figs),
        "",
        f"## Parameter recovery of (b): {', '.join(m['mechanistic']['estimated'])}",
        "",
        f"{RECOVERY_NOTE[c.twin]} Coverage of the 90% posterior intervals:",
        "",
        *recovery_lines(rec, coverage),
        "",
        *posterior_lines(m["mechanistic"]["posterior"]),
    ]  # fmt: skip
    if "closed_loop" in m:
        lines += ["", f"## Closed loop in simglucose: {c.closed_loop_days} held-out day(s)", "",
                  *closed_loop_lines(out_dir, m, groups, list(m["patients"]))]  # fmt: skip
    write_markdown(out_dir, lines)
