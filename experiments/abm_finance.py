"""Household finance: income shocks, present bias, overdraft and default; automatic-saving and
commitment nudges vs the baseline, by income group (mean and 90% band across seeds)."""

from __future__ import annotations

import functools
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
from tqdm import tqdm

from twinjax.abm import finance as fin
from twinjax.config import Config
from twinjax_experiments import report
from twinjax_experiments.config import AbmFinance


def scenarios(c: AbmFinance) -> dict[str, fin.FinanceParams]:
    base = fin.FinanceParams()
    return {
        "baseline": base,
        "auto_save": base._replace(auto_save=c.auto_save),
        "commitment": base._replace(commitment=c.commitment),
        "both": base._replace(auto_save=c.auto_save, commitment=c.commitment),
    }


def run_scenario(keys, params: fin.FinanceParams, c: AbmFinance):
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
        row = {**report.banded("default_rate", defaulted.mean(-1)),
               "overdraft_share_mean": float(np.mean(overdraft_t)),
               "final_price_level_mean": float(np.mean(price[:, -1]))}  # fmt: skip
        for g, label in enumerate(fin.INCOME_GROUPS):
            w = (income == g).astype(float)
            row |= report.banded(f"default_rate_{label}", (defaulted * w).sum(-1) / w.sum(-1))
            row[f"net_worth_months_{label}_median"] = float(
                np.median(worth[np.broadcast_to(w > 0, worth.shape)])
            )
        summary[name] = row
    return summary, curves


def simulate(key, c: AbmFinance) -> tuple[dict, dict]:
    """The metrics (``scenarios``: a summary row per scenario) and per scenario the overdraft
    curves [seeds, months]; the same households and shocks across scenarios."""
    keys = jax.random.split(key, c.n_seeds)
    results = {
        name: run_scenario(keys, p, c) for name, p in tqdm(scenarios(c).items(), desc="scenarios")
    }
    summary, curves = summarize(results)
    return {"scenarios": summary, "n_agents": c.n_agents, "n_seeds": c.n_seeds}, curves


def write_report(out_dir: Path, c: AbmFinance, metrics: dict, curves: dict) -> None:
    summary = metrics["scenarios"]
    figures = [
        report.band_figure(out_dir, "overdraft.png", curves, xlabel="month",
                           ylabel="share in overdraft", title="Overdraft: mean and 90% band"),
        report.bars_figure(out_dir, "default_by_income.png", summary, "default_rate",
                           fin.INCOME_GROUPS, ylabel="share ever defaulted",
                           title="Default by income group (mean, 90% band)"),
    ]  # fmt: skip
    by_group = lambda r, g: (
        f"{report.band_cell(r, f'default_rate_{g}')}; {r[f'net_worth_months_{g}_median']:.2f}"
    )
    report.write_scenario_report(
        out_dir, summary, figures=figures,
        title="ABM household finance: present bias, shocks, overdraft and default",
        about=f"{c.n_agents} households, {c.n_months} months, {c.n_seeds} seeds (same households "
        "and shocks across scenarios); 90% bands across seeds. Nudges: automatic saving of "
        f"{c.auto_save:.0%} of income, commitment device raising beta by {c.commitment}.",
        groups=("By income group (default rate [90% band]; median net worth in months)",
                fin.INCOME_GROUPS, by_group),
        columns={
            "default rate [90% band]": lambda r: report.band_cell(r, "default_rate"),
            "share of months in overdraft": lambda r: f"{r['overdraft_share_mean']:.3f}",
            "price level": lambda r: f"{r['final_price_level_mean']:.3f}",
        },
    )  # fmt: skip


def run(cfg: Config, out_dir: Path) -> dict:
    metrics, curves = simulate(jax.random.key(cfg.seed), cfg.experiment)
    # sweeps (nothing is fitted to data): the default rate with both policies, to minimize
    metrics["objective"] = metrics["scenarios"]["both"]["default_rate_mean"]
    write_report(out_dir, cfg.experiment, metrics, curves)
    return metrics
