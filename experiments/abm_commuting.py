"""Commuting: mode and departure choice with congestion and crowding feedback; transit frequency
and congestion-price levers, compared with the baseline by income group (mean, 90% band)."""

from __future__ import annotations

import functools
from dataclasses import dataclass
from pathlib import Path

import jax
import jax.numpy as jnp
import matplotlib.pyplot as plt
import numpy as np
from omegaconf import DictConfig
from tqdm import tqdm

from twinjax.abm import commuting as cm
from twinjax.abm.population import band
from twinjax.abm.report import group_bars
from twinjax.config import experiment_config


@dataclass
class Config:
    n_agents: int = 20_000
    n_days: int = 40
    n_seeds: int = 10
    average_last_days: int = 10
    transit_frequency: float = 4.0
    transit_frequency_high: float = 8.0
    congestion_price: float = 4.0


def scenarios(c: Config) -> dict[str, cm.CityParams]:
    base = cm.CityParams(transit_frequency=c.transit_frequency)
    return {
        "baseline": base,
        "transit_x2": base._replace(transit_frequency=c.transit_frequency_high),
        "congestion_price": base._replace(congestion_price=c.congestion_price),
        "both": base._replace(
            transit_frequency=c.transit_frequency_high, congestion_price=c.congestion_price
        ),
    }


def run_scenario(keys, city: cm.CityParams, c: Config):
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


def summarize(results, c: Config):
    summary, daily = {}, {}
    last = slice(c.n_days - c.average_last_days, None)
    base_logsum = None
    for name, (income, out) in results.items():
        inc = income[:, None, :]  # [seeds, 1, n]
        shares = jnp.stack([(out.mode == m).mean(-1) for m in range(3)], -1)  # [seeds, days, 3]
        daily[name] = np.asarray(shares)
        row = {}
        for m, label in enumerate(cm.MODES):
            mean, lo, hi = band(shares[:, last, m].mean(1))
            row[f"share_{label}_mean"], row[f"share_{label}_q05"] = float(mean), float(lo)
            row[f"share_{label}_q95"] = float(hi)
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
            m, lo, hi = band(gm(logsum - base_logsum))
            row[f"welfare_change_{label}_mean"], row[f"welfare_change_{label}_q05"] = (
                float(m),
                float(lo),
            )
            row[f"welfare_change_{label}_q95"] = float(hi)
        summary[name] = row
    return summary, daily


def _plots(daily, summary, out_dir: Path) -> list[str]:
    fig, axes = plt.subplots(1, 3, figsize=(12, 3.5), sharey=True)
    for m, ax in enumerate(axes):
        for name, shares in daily.items():
            mean, lo, hi = band(shares[..., m])
            t = np.arange(len(mean))
            ax.plot(t, mean, label=name)
            ax.fill_between(t, lo, hi, alpha=0.2)
        ax.set(title=f"{cm.MODES[m]} share", xlabel="day")
    axes[0].legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(out_dir / "mode_shares.png", dpi=110)
    plt.close(fig)

    fig, ax = plt.subplots(figsize=(7, 4))
    levers = {n: r for n, r in summary.items() if n != "baseline"}
    group_bars(ax, levers, "welfare_change", cm.INCOME_GROUPS)
    ax.axhline(0, color="k", lw=0.5)
    ax.set(ylabel="logsum change vs baseline (money/trip)", title="Welfare change by income")
    ax.legend()
    fig.tight_layout()
    fig.savefig(out_dir / "welfare_by_income.png", dpi=110)
    plt.close(fig)
    return ["mode_shares.png", "welfare_by_income.png"]


def _report(c: Config, summary, figures) -> str:
    lines = [
        "# ABM commuting: mode and departure-time choice with congestion feedback",
        "",
        f"{c.n_agents} commuters, {c.n_days} days, {c.n_seeds} seeds; averages over the last "
        f"{c.average_last_days} days; 90% bands across seeds. Welfare: change of the logit "
        "logsum (expected maximum utility, in money per trip) against the baseline; the price "
        "revenue is not recycled.",
        "",
        "| scenario | car share | transit share | bike share | minutes/trip |",
        "|---|---|---|---|---|",
    ]
    for name, r in summary.items():
        cells = [
            f"{r[f'share_{m}_mean']:.3f} [{r[f'share_{m}_q05']:.3f}, {r[f'share_{m}_q95']:.3f}]"
            for m in cm.MODES
        ]
        lines.append(f"| {name} | " + " | ".join(cells) + f" | {r['minutes_mean']:.1f} |")
    lines += ["", "## By income group", ""]
    lines.append("| scenario | " + " | ".join(
        f"{g}: car share / minutes / welfare change" for g in cm.INCOME_GROUPS) + " |")  # fmt: skip
    lines.append("|---|---|---|---|")
    for name, r in summary.items():
        cells = [
            f"{r[f'car_share_{g}_mean']:.3f} / {r[f'minutes_{g}_mean']:.1f} / "
            f"{r[f'welfare_change_{g}_mean']:+.2f} [{r[f'welfare_change_{g}_q05']:+.2f}, "
            f"{r[f'welfare_change_{g}_q95']:+.2f}]"
            for g in cm.INCOME_GROUPS
        ]
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    lines += ["", *[f"![{f}]({f})" for f in figures], ""]
    return "\n".join(lines)


def run(cfg: DictConfig, out_dir: Path) -> dict:
    c = experiment_config(Config, cfg.experiment)
    plt.switch_backend("Agg")
    keys = jax.random.split(jax.random.key(cfg.seed), c.n_seeds)  # same people across scenarios
    results = {
        name: run_scenario(keys, city, c)
        for name, city in tqdm(scenarios(c).items(), desc="scenarios")
    }
    summary, daily = summarize(results, c)
    figures = _plots(daily, summary, out_dir)
    (out_dir / "report.md").write_text(_report(c, summary, figures))
    return {"scenarios": summary, "n_agents": c.n_agents, "n_seeds": c.n_seeds}
