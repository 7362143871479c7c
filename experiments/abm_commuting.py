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

from experiments.config import AbmCommuting
from experiments.report import (
    band_cell,
    band_lines,
    banded,
    bars_figure,
    images,
    save_figure,
    table,
    write_markdown,
)
from twinjax.abm import commuting as cm
from twinjax.config import Config


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
            row |= banded(f"share_{label}", shares[:, last, m].mean(1))
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
            row |= banded(f"welfare_change_{label}", gm(logsum - base_logsum))
        summary[name] = row
    return summary, daily


def simulate(key, c: AbmCommuting):
    """Per scenario: the summary row and the daily mode shares [seeds, days, modes]; the same
    people across scenarios."""
    keys = jax.random.split(key, c.n_seeds)
    results = {
        name: run_scenario(keys, city, c)
        for name, city in tqdm(scenarios(c).items(), desc="scenarios")
    }
    return summarize(results, c)


def write_report(out_dir: Path, c: AbmCommuting, summary: dict, daily: dict) -> None:
    fig, axes = plt.subplots(1, 3, figsize=(12, 3.5), sharey=True)
    for m, ax in enumerate(axes):
        band_lines(ax, {name: shares[..., m] for name, shares in daily.items()})
        ax.set(title=f"{cm.MODES[m]} share", xlabel="day")
    axes[0].legend(fontsize=7)
    levers = {n: r for n, r in summary.items() if n != "baseline"}
    figures = [
        save_figure(fig, out_dir, "mode_shares.png"),
        bars_figure(out_dir, "welfare_by_income.png", levers, "welfare_change", cm.INCOME_GROUPS,
                    ylabel="logsum change vs baseline (money/trip)",
                    title="Welfare change by income"),
    ]  # fmt: skip
    by_group = lambda r, g: (
        f"{r[f'car_share_{g}_mean']:.3f} / {r[f'minutes_{g}_mean']:.1f} / "
        f"{band_cell(r, f'welfare_change_{g}', '+.2f')}"
    )
    write_markdown(out_dir, [
        "# ABM commuting: mode and departure-time choice with congestion feedback",
        "",
        f"{c.n_agents} commuters, {c.n_days} days, {c.n_seeds} seeds; averages over the last "
        f"{c.average_last_days} days; 90% bands across seeds. Welfare: change of the logit "
        "logsum (expected maximum utility, in money per trip) against the baseline; the price "
        "revenue is not recycled.",
        "",
        *table(["scenario", *(f"{m} share" for m in cm.MODES), "minutes/trip"],
               [[name, *(band_cell(r, f"share_{m}") for m in cm.MODES),
                 f"{r['minutes_mean']:.1f}"] for name, r in summary.items()]),
        "",
        "## By income group",
        "",
        *table(["scenario", *(f"{g}: car share / minutes / welfare change"
                              for g in cm.INCOME_GROUPS)],
               [[name, *(by_group(r, g) for g in cm.INCOME_GROUPS)]
                for name, r in summary.items()]),
        "",
        *images(figures),
    ])  # fmt: skip


def run(cfg: Config, out_dir: Path) -> dict:
    c: AbmCommuting = cfg.experiment
    summary, daily = simulate(jax.random.key(cfg.seed), c)
    write_report(out_dir, c, summary, daily)
    return {"scenarios": summary, "n_agents": c.n_agents, "n_seeds": c.n_seeds}
