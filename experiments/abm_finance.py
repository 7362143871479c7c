"""Household finance: income shocks, present bias, overdraft and default; automatic-saving and
commitment nudges vs the baseline, by income group (mean and 90% band across seeds)."""

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

from twinjax.abm import finance as fin
from twinjax.abm.population import band
from twinjax.abm.report import band_lines, group_bars
from twinjax.config import experiment_config


@dataclass
class Config:
    n_agents: int = 20_000
    n_months: int = 60
    n_seeds: int = 20
    auto_save: float = 0.05
    commitment: float = 0.15


def scenarios(c: Config) -> dict[str, fin.FinanceParams]:
    base = fin.FinanceParams()
    return {
        "baseline": base,
        "auto_save": base._replace(auto_save=c.auto_save),
        "commitment": base._replace(commitment=c.commitment),
        "both": base._replace(auto_save=c.auto_save, commitment=c.commitment),
    }


def run_scenario(keys, params: fin.FinanceParams, c: Config):
    """Vmapped over seeds; the parameters are traced, so all scenarios share one compilation."""
    return _ensemble(c.n_agents, c.n_months)(keys, jax.tree.map(jnp.float32, params))


@functools.cache
def _ensemble(n_agents: int, n_months: int):
    @jax.jit
    def run(keys, params):
        def one(key):
            k_pop, k_sim = jax.random.split(key)
            h = fin.synthetic_households(k_pop, n_agents)
            final, out = fin.simulate(k_sim, h, params, n_months)
            return h.income, h.y_perm, final, out.overdraft.mean(-1), out.price

        return jax.vmap(one)(keys)

    return run


def summarize(results):
    summary, curves = {}, {}
    for name, (income, y, final, overdraft_t, price) in results.items():
        income, y = np.asarray(income), np.asarray(y)
        worth = np.asarray((final.w + final.a) / y)
        defaulted = np.asarray(final.defaulted)
        curves[name] = np.asarray(overdraft_t)
        m, lo, hi = band(defaulted.mean(-1))
        row = {"default_rate_mean": float(m), "default_rate_q05": float(lo),
               "default_rate_q95": float(hi),
               "overdraft_share_mean": float(np.mean(overdraft_t)),
               "final_price_level_mean": float(np.mean(price[:, -1]))}  # fmt: skip
        for g, label in enumerate(fin.INCOME_GROUPS):
            w = (income == g).astype(float)
            gm = lambda x, w=w: (x * w).sum(-1) / w.sum(-1)
            m, lo, hi = band(gm(defaulted))
            row[f"default_rate_{label}_mean"], row[f"default_rate_{label}_q05"] = (
                float(m),
                float(lo),
            )
            row[f"default_rate_{label}_q95"] = float(hi)
            row[f"net_worth_months_{label}_median"] = float(
                np.median(worth[np.broadcast_to(w > 0, worth.shape)])
            )
        summary[name] = row
    return summary, curves


def _plots(summary, curves, out_dir: Path) -> list[str]:
    fig, ax = plt.subplots(figsize=(7, 4))
    band_lines(ax, curves)
    ax.set(xlabel="month", ylabel="share in overdraft", title="Overdraft: mean and 90% band")
    ax.legend()
    fig.tight_layout()
    fig.savefig(out_dir / "overdraft.png", dpi=110)
    plt.close(fig)

    fig, ax = plt.subplots(figsize=(7, 4))
    group_bars(ax, summary, "default_rate", fin.INCOME_GROUPS)
    ax.set(ylabel="share ever defaulted", title="Default by income group (mean, 90% band)")
    ax.legend()
    fig.tight_layout()
    fig.savefig(out_dir / "default_by_income.png", dpi=110)
    plt.close(fig)
    return ["overdraft.png", "default_by_income.png"]


def _report(c: Config, summary, figures) -> str:
    lines = [
        "# ABM household finance: present bias, shocks, overdraft and default",
        "",
        f"{c.n_agents} households, {c.n_months} months, {c.n_seeds} seeds (same households and "
        "shocks across scenarios); 90% bands across seeds. Nudges: automatic saving of "
        f"{c.auto_save:.0%} of income, commitment device raising beta by {c.commitment}.",
        "",
        "| scenario | default rate [90% band] | share of months in overdraft | price level |",
        "|---|---|---|---|",
    ]
    for name, r in summary.items():
        lines.append(
            f"| {name} | {r['default_rate_mean']:.3f} [{r['default_rate_q05']:.3f}, "
            f"{r['default_rate_q95']:.3f}] | {r['overdraft_share_mean']:.3f} | "
            f"{r['final_price_level_mean']:.3f} |"
        )
    lines += ["", "## By income group (default rate [90% band]; median net worth in months)", ""]
    lines.append("| scenario | " + " | ".join(fin.INCOME_GROUPS) + " |")
    lines.append("|---|---|---|---|")
    for name, r in summary.items():
        cells = [
            f"{r[f'default_rate_{g}_mean']:.3f} [{r[f'default_rate_{g}_q05']:.3f}, "
            f"{r[f'default_rate_{g}_q95']:.3f}]; {r[f'net_worth_months_{g}_median']:.2f}"
            for g in fin.INCOME_GROUPS
        ]
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    lines += ["", *[f"![{f}]({f})" for f in figures], ""]
    return "\n".join(lines)


def run(cfg: DictConfig, out_dir: Path) -> dict:
    c = experiment_config(Config, cfg.experiment)
    plt.switch_backend("Agg")
    keys = jax.random.split(jax.random.key(cfg.seed), c.n_seeds)
    results = {
        name: run_scenario(keys, p, c) for name, p in tqdm(scenarios(c).items(), desc="scenarios")
    }
    summary, curves = summarize(results)
    figures = _plots(summary, curves, out_dir)
    (out_dir / "report.md").write_text(_report(c, summary, figures))
    return {"scenarios": summary, "n_agents": c.n_agents, "n_seeds": c.n_seeds}
