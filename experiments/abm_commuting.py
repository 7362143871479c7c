"""Commuting: mode and departure choice with congestion and crowding feedback; transit frequency
and congestion-price levers, compared with the baseline by income group (mean, 90% band)."""

from __future__ import annotations

import functools
from pathlib import Path

import jax
import jax.numpy as jnp
import matplotlib.pyplot as plt
import numpy as np
from tqdm import tqdm

from twinjax.abm import commuting as cm
from twinjax.config import Config
from twinjax_experiments import report
from twinjax_experiments.config import AbmCommuting


def scenarios(c: AbmCommuting) -> dict[str, cm.CityParams]:
    base = cm.CityParams(transit_frequency=c.transit_frequency)
    return {
        "baseline": base,
        "transit_x2": base._replace(transit_frequency=c.transit_frequency_high),
        "congestion_price": base._replace(congestion_price=c.congestion_price),
        "both": base._replace(
            transit_frequency=c.transit_frequency_high, congestion_price=c.congestion_price
        ),
    }


def run_scenario(keys, city: cm.CityParams, c: AbmCommuting):
    """Per seed (vmapped): its own synthetic commuters and choice noise. The levers are traced
    arguments, so all scenarios share one compilation."""
    return _ensemble(c.n_agents, c.n_days, city.n_slots)(
        keys, jnp.float32(city.transit_frequency), jnp.float32(city.congestion_price)
    )


@functools.cache
def _ensemble(n_agents: int, n_days: int, n_slots: int):
    @jax.jit
    def run(keys, frequency, price):
        city = cm.CityParams(n_slots=n_slots, transit_frequency=frequency, congestion_price=price)

        def one(key):
            k_pop, k_sim = jax.random.split(key)
            people = cm.synthetic_commuters(k_pop, n_agents, n_slots)
            _, out = cm.simulate(k_sim, people, city, n_days)
            return people.income, out

        return jax.vmap(one)(keys)

    return run


def summarize(results, c: AbmCommuting):
    summary, daily = {}, {}
    last = slice(c.n_days - c.average_last_days, None)
    base_logsum = None
    for name, (income, out) in results.items():
        inc = income[:, None, :]  # [seeds, 1, n]
        shares = jnp.stack([(out.mode == m).mean(-1) for m in range(3)], -1)  # [seeds, days, 3]
        daily[name] = np.asarray(shares)
        row = {}
        for m, label in enumerate(cm.MODES):
            row |= report.banded(f"share_{label}", shares[:, last, m].mean(1))
        minutes = out.minutes[:, last].mean(1)  # [seeds, n]
        row["minutes_mean"] = float(minutes.mean())
        logsum = out.logsum[:, last].mean(1)
        if base_logsum is None:
            base_logsum = logsum
        for g, label in enumerate(cm.INCOME_GROUPS):
            w = (inc[:, 0] == g).astype(jnp.float32)
            gm = lambda x, w=w: (x * w).sum(-1) / w.sum(-1)
            row[f"minutes_{label}_mean"] = float(gm(minutes).mean())
            row[f"car_share_{label}_mean"] = float(gm((out.mode[:, last] == cm.CAR).mean(1)).mean())
            row |= report.banded(f"welfare_change_{label}", gm(logsum - base_logsum))
        summary[name] = row
    return summary, daily


def simulate(key, c: AbmCommuting) -> tuple[dict, dict]:
    """The metrics (``scenarios``: a summary row per scenario) and per scenario the daily mode
    shares [seeds, days, modes]; the same people across scenarios."""
    keys = jax.random.split(key, c.n_seeds)
    results = {
        name: run_scenario(keys, city, c)
        for name, city in tqdm(scenarios(c).items(), desc="scenarios")
    }
    summary, daily = summarize(results, c)
    return {"scenarios": summary, "n_agents": c.n_agents, "n_seeds": c.n_seeds}, daily


def write_report(out_dir: Path, c: AbmCommuting, metrics: dict, daily: dict) -> None:
    summary = metrics["scenarios"]
    fig, axes = plt.subplots(1, 3, figsize=(12, 3.5), sharey=True)
    for m, ax in enumerate(axes):
        report.band_lines(ax, {name: shares[..., m] for name, shares in daily.items()})
        ax.set(title=f"{cm.MODES[m]} share", xlabel="day")
    axes[0].legend(fontsize=7)
    levers = {n: r for n, r in summary.items() if n != "baseline"}
    figures = [
        report.save_figure(fig, out_dir, "mode_shares.png"),
        report.bars_figure(out_dir, "welfare_by_income.png", levers, "welfare_change",
                           cm.INCOME_GROUPS, ylabel="logsum change vs baseline (money/trip)",
                           title="Welfare change by income"),
    ]  # fmt: skip
    shares = {f"{m} share": lambda r, m=m: report.band_cell(r, f"share_{m}") for m in cm.MODES}
    by_group = lambda r, g: (
        f"{r[f'car_share_{g}_mean']:.3f} / {r[f'minutes_{g}_mean']:.1f} / "
        f"{report.band_cell(r, f'welfare_change_{g}', '+.2f')}"
    )
    report.write_scenario_report(
        out_dir, summary, figures=figures,
        title="ABM commuting: mode and departure-time choice with congestion feedback",
        about=f"{c.n_agents} commuters, {c.n_days} days, {c.n_seeds} seeds; averages over the "
        f"last {c.average_last_days} days; 90% bands across seeds. Welfare: change of the logit "
        "logsum (expected maximum utility, in money per trip) against the baseline; the price "
        "revenue is not recycled.",
        groups=("By income group (car share / minutes per trip / welfare change [90% band])",
                cm.INCOME_GROUPS, by_group),
        columns=shares | {"minutes/trip": lambda r: f"{r['minutes_mean']:.1f}"},
    )  # fmt: skip


def run(cfg: Config, out_dir: Path) -> dict:
    metrics, daily = simulate(jax.random.key(cfg.seed), cfg.experiment)
    # sweeps (nothing is fitted to data): minutes per trip with both levers, to minimize
    metrics["objective"] = metrics["scenarios"]["both"]["minutes_mean"]
    write_report(out_dir, cfg.experiment, metrics, daily)
    return metrics
