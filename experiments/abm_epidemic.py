"""SEIR on a household / school-work / community network: interventions vs baseline, by age group.

Scenarios (each an ensemble over ``n_seeds`` seeds, vmapped): baseline, vaccination campaign,
distancing on the school/work and community layers, testing and isolation. Optionally a
calibration section recovers the transmission and recovery rates of a synthetic epidemic on
starsim's RandomNet (NumPyro NUTS interval and optax through the relaxed simulator).
"""

from __future__ import annotations

from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
from tqdm import tqdm

from twinjax import abm
from twinjax.abm.calibration import (
    fit_gradient,
    inference_labels,
    interval,
    observed_counts,
    posterior_mcmc,
    predictive_counts,
)
from twinjax.abm.population import AGE_GROUPS, synthetic_population
from twinjax.bayes.diagnostics import problems_of
from twinjax.bayes.idata import diagnose_idata, mcmc_inference_data
from twinjax.config import Config
from twinjax.runtime.files import replacing
from twinjax_experiments import report
from twinjax_experiments.config import AbmEpidemic


def policies(c: AbmEpidemic) -> dict[str, abm.Policy]:
    ones = jnp.ones(3)
    base = abm.Policy(
        vax_start=-1, vax_rate=0.0, vax_efficacy=0.0, distancing_start=-1, layer_scale=ones,
        test_rate=0.0, isolation_efficacy=0.0,
    )  # fmt: skip
    scale = jnp.array([1.0, c.distancing_scale, c.distancing_scale])
    return {
        "baseline": base,
        "vaccination": base._replace(
            vax_start=c.vax_start, vax_rate=c.vax_rate, vax_efficacy=c.vax_efficacy
        ),
        "distancing": base._replace(distancing_start=c.distancing_start, layer_scale=scale),
        "test_isolate": base._replace(
            test_rate=c.test_rate, isolation_efficacy=c.isolation_efficacy
        ),
    }


def run_scenarios(key, c: AbmEpidemic):
    """Per scenario: counts ``[seeds, time, groups, statuses]``."""
    k_pop, k_runs = jax.random.split(key)
    pop = synthetic_population(k_pop, c.n_agents)
    params = abm.SEIRParams(gamma=c.gamma, sigma=c.sigma)
    betas = (c.beta_household, c.beta_school_work, c.beta_community)

    @jax.jit
    def ensemble(keys, policy, pop):  # the network is an argument, not a baked-in constant
        layers = tuple(
            abm.Layer(net, b)
            for net, b in zip((pop.household, pop.school_work, pop.community), betas, strict=True)
        )

        def one(k):
            agents = abm.init_agents(jax.random.fold_in(k, 1), c.n_agents, c.init_prev)
            agents = agents._replace(group=pop.age_group)
            _, out = abm.simulate(k, agents, params, layers, c.n_steps, n_groups=3, policy=policy)
            return out.counts

        return jax.vmap(one)(keys)

    keys = jax.random.split(k_runs, c.n_seeds)  # common random numbers across scenarios
    results = {}
    for name, pol in tqdm(policies(c).items(), desc="scenarios"):
        results[name] = np.asarray(ensemble(keys, pol, pop))
    group_sizes = np.bincount(np.asarray(pop.age_group), minlength=3)
    return results, group_sizes


def summarize(results, group_sizes, n):
    out = {}
    base_attack = None
    for name, counts in results.items():
        final = counts[:, -1]  # [seeds, groups, statuses]
        attack = (n - final[..., abm.S].sum(-1)) / n
        attack_g = 1.0 - final[..., abm.S] / group_sizes[None, :]
        prev = counts[..., abm.I].sum(-1) / n  # [seeds, time]
        row = {
            **report.banded("attack_rate", attack),
            "peak_prevalence_mean": float(prev.max(1).mean()),
            "peak_day_mean": float(prev.argmax(1).mean()),
        }
        for g, label in enumerate(AGE_GROUPS):
            row |= report.banded(f"attack_rate_{label}", attack_g[:, g])
        if base_attack is None:
            base_attack = attack
        row["infections_averted_pct_mean"] = float(100 * np.mean(1 - attack / base_attack))
        out[name] = row
    return out


def calibration(key, c: AbmEpidemic):
    """The synthetic epidemic's rates by NUTS and by gradient: metrics, the observed counts,
    the gradient fit and the NUTS fit's InferenceData (diagnostics in the metrics)."""
    net = abm.RandomNet(10)
    k_data, k_nuts, k_grad = jax.random.split(key, 3)
    k_idata = jax.random.fold_in(key, 3)  # a fourth key that leaves the three above as they were
    agents = abm.init_agents(jax.random.fold_in(k_data, 1), c.calib_n_agents, 0.01)
    layers = (abm.Layer(net, c.calib_beta),)
    _, out = abm.simulate(k_data, agents, abm.SEIRParams(c.calib_gamma), layers, c.calib_n_steps)
    obs = observed_counts(out, c.calib_n_agents)
    mcmc = posterior_mcmc(k_nuts, obs, network=net, **c.nuts.kwargs())
    post = mcmc.get_samples()
    pp = predictive_counts(k_idata, post, obs, network=net)
    idata = mcmc_inference_data(mcmc, posterior_predictive=pp, **inference_labels(obs),
                                attrs={"model": "SIR chain binomial", "network": "RandomNet(10)",
                                       "true_beta": c.calib_beta, "true_gamma": c.calib_gamma})  # fmt: skip
    fit = fit_gradient(k_grad, obs, init_prev=0.01, network=net, n_iterations=c.calib_iterations)
    res = {"true_beta": c.calib_beta, "true_gamma": c.calib_gamma}
    for name, truth in [("beta", c.calib_beta), ("gamma", c.calib_gamma)]:
        lo, hi = interval(post[name])
        med = float(jnp.median(post[name]))
        res[f"nuts_{name}_median"] = med
        res[f"nuts_{name}_q05"], res[f"nuts_{name}_q95"] = lo, hi
        res[f"nuts_{name}_rel_error"] = abs(med / truth - 1)
        res[f"nuts_{name}_interval_covers_truth"] = bool(lo <= truth <= hi)
        est = getattr(fit, name)
        res[f"gradient_{name}"] = est
        res[f"gradient_{name}_rel_error"] = abs(est / truth - 1)
    res["gradient_loss_first"] = float(fit.loss_history[0])
    res["gradient_loss_last10_mean"] = float(fit.loss_history[-10:].mean())
    res["diagnostic_problems"] = problems_of(diagnose_idata(idata, ("beta", "gamma")))
    return res, obs, fit, idata


def twin_driven(key, c: AbmEpidemic) -> dict:
    """Agents whose susceptibility comes from their own fitted twin (synthetic cohort)."""
    from twinjax.adapters.twin_agents import TwinCoupling, fit_twins, simulate_with_twins
    from twinjax.data import Series, synthetic_cohort
    from twinjax.twins import TwinSpec

    k_coh, k_fit, k_agents, k_sim = jax.random.split(key, 4)
    n, w = c.twin_n_agents, c.twin_window
    cohort = synthetic_cohort(k_coh, n_individuals=n, n_steps=w, unequal_lengths=False)
    v = cohort.values
    mu, sd = v.mean((0, 1)), v.std((0, 1)) + 1e-6
    win = Series(
        jnp.asarray((v - mu) / sd * cohort.mask, jnp.float32),
        jnp.asarray(cohort.mask),
        jnp.asarray(cohort.interventions, jnp.float32),
        jnp.asarray(cohort.static, jnp.float32),
    )
    spec = TwinSpec(n_features=v.shape[-1], n_interventions=win.interventions.shape[-1],
                    n_static=win.static.shape[-1], cell="gru", hidden=16, attention=False)  # fmt: skip
    params = fit_twins(k_fit, spec, win, steps=c.twin_fit_steps)
    agents = abm.init_agents(k_agents, n, 0.02)
    layers = (abm.Layer(abm.WellMixed(), 0.35),)
    coupling = TwinCoupling(feature=0, ref_mean=0.0, ref_sd=1.0, strength=c.twin_strength,
                            sick_feature=2, sick_value=-2.0)  # fmt: skip
    seir = abm.SEIRParams(gamma=c.gamma)
    run = jax.jit(
        lambda k, cp: simulate_with_twins(
            k, agents, seir, layers, c.twin_n_steps, params, spec, win, cp
        )
    )
    keys = jax.random.split(k_sim, c.n_seeds)
    coupled = [run(k, coupling) for k in keys]
    plain = [run(k, coupling._replace(strength=0.0)) for k in keys]
    sus0 = np.asarray(coupled[0][1][1][0])
    top = sus0 >= np.quantile(sus0, 2 / 3)
    bottom = sus0 <= np.quantile(sus0, 1 / 3)
    ever = lambda st: np.asarray(st.agents.status != abm.S)
    att_top = np.mean([ever(s)[top].mean() for s, _ in coupled])
    att_bottom = np.mean([ever(s)[bottom].mean() for s, _ in coupled])
    return {
        "n_agents": n,
        "rel_sus_sd_step0": float(sus0.std()),
        "attack_rate_coupled_mean": float(np.mean([ever(s).mean() for s, _ in coupled])),
        "attack_rate_uncoupled_mean": float(np.mean([ever(s).mean() for s, _ in plain])),
        "attack_rate_top_third_susceptibility": float(att_top),
        "attack_rate_bottom_third_susceptibility": float(att_bottom),
    }


def write_report(out_dir: Path, c: AbmEpidemic, metrics: dict, results: dict) -> None:
    summary, n = metrics["scenarios"], c.n_agents
    prevalence = {name: counts[..., abm.I].sum(-1) / n for name, counts in results.items()}
    figures = [
        report.band_figure(out_dir, "prevalence.png", prevalence, xlabel="day",
                           ylabel="infectious fraction", title="Prevalence: mean and 90% band"),
        report.bars_figure(out_dir, "attack_by_age.png", summary, "attack_rate", AGE_GROUPS,
                           ylabel="attack rate",
                           title="Attack rate by age group (mean, 90% band)"),
    ]  # fmt: skip
    report.write_scenario_report(
        out_dir, summary, figures=figures,
        title="ABM epidemic: SEIR on a multi-layer contact network",
        about=f"{c.n_agents} agents, {c.n_steps} days, {c.n_seeds} seeds per scenario (common "
        "random numbers), layers household / school-work / community. Mean and 90% band across "
        "seeds.",
        groups=("By age group (attack rate, mean [90% band])", AGE_GROUPS,
                lambda r, g: report.band_cell(r, f"attack_rate_{g}")),
        columns={
            "attack rate [90% band]": lambda r: report.band_cell(r, "attack_rate"),
            "averted vs baseline": lambda r: f"{r['infections_averted_pct_mean']:.1f}%",
            "peak prevalence": lambda r: f"{r['peak_prevalence_mean']:.3f}",
            "peak day": lambda r: f"{r['peak_day_mean']:.0f}",
        },
        more=[*_calibration_lines(metrics.get("calibration")),
              *_twin_lines(c, metrics.get("twin_driven"))],
    )  # fmt: skip


def _calibration_lines(calib: dict | None) -> list[str]:
    if not calib:
        return []
    row = lambda p: [
        p, calib[f"true_{p}"],
        f"{calib[f'nuts_{p}_median']:.4f} [{calib[f'nuts_{p}_q05']:.4f}, "
        f"{calib[f'nuts_{p}_q95']:.4f}]",
        calib[f"nuts_{p}_interval_covers_truth"],
        f"{calib[f'gradient_{p}']:.4f} ({100 * calib[f'gradient_{p}_rel_error']:.1f}% off)",
    ]  # fmt: skip
    return [
        "",
        "## Calibration (synthetic SIR on starsim's RandomNet, 10 contacts)",
        "",
        *report.table(["parameter", "truth", "NUTS median [90% interval]", "covers",
                       "optax (relaxed sim)"], [row("beta"), row("gamma")]),
        "",
        "MCMC diagnostics (ArviZ): " + ("; ".join(calib["diagnostic_problems"]) or "all passed")
        + ". The NUTS fit as ArviZ InferenceData: `posterior.nc` (sample_stats, pointwise "
        "log-likelihood of `new` and `rec`, their one-step posterior predictive, the observed "
        "counts; `arviz.loo(idata, var_name=\"new\")`).",
    ]  # fmt: skip


def _twin_lines(c: AbmEpidemic, twins: dict | None) -> list[str]:
    if not twins:
        return []
    return [
        "",
        "## Twin-driven agents",
        "",
        f"{twins['n_agents']} agents, each with its own GRU twin fitted on its synthetic-cohort "
        "window; every step the twins' predicted first stream sets susceptibility "
        f"(strength {c.twin_strength}; sd of rel_sus at step 0: "
        f"{twins['rel_sus_sd_step0']:.3f}), infectious agents' activity stream is overwritten "
        "(feedback). Mass-action SIR, mean over seeds.",
        "",
        *report.table(["run", "attack rate"], [
            ["uncoupled (strength 0)", f"{twins['attack_rate_uncoupled_mean']:.3f}"],
            ["twin-coupled, all", f"{twins['attack_rate_coupled_mean']:.3f}"],
            ["twin-coupled, top third of twin-predicted susceptibility",
             f"{twins['attack_rate_top_third_susceptibility']:.3f}"],
            ["twin-coupled, bottom third",
             f"{twins['attack_rate_bottom_third_susceptibility']:.3f}"],
        ]),
    ]  # fmt: skip


def run(cfg: Config, out_dir: Path) -> dict:
    c: AbmEpidemic = cfg.experiment
    k_sim, k_cal = jax.random.split(jax.random.key(cfg.seed))
    results, group_sizes = run_scenarios(k_sim, c)
    summary = summarize(results, group_sizes, c.n_agents)
    metrics = {"scenarios": summary, "n_agents": c.n_agents, "n_seeds": c.n_seeds}
    # sweeps (nothing is fitted to data): the mean attack rate under the interventions
    metrics["objective"] = float(np.mean([r["attack_rate_mean"] for k, r in summary.items()
                                          if k != "baseline"]))  # fmt: skip
    if c.calibrate:
        metrics["calibration"], _, _, idata = calibration(k_cal, c)
        with replacing(out_dir / "posterior.nc") as tmp:  # the NUTS fit, for ArviZ
            idata.to_netcdf(str(tmp))
    if c.twin_agents:
        metrics["twin_driven"] = twin_driven(jax.random.fold_in(k_cal, 1), c)
    write_report(out_dir, c, metrics, results)
    return metrics
