"""Plot pieces shared by the scenario reports: mean + 90% band lines and subgroup bars."""

from __future__ import annotations

import numpy as np

from twinjax.abm.population import band


def band_lines(ax, curves: dict) -> None:
    """One line per scenario: mean across seeds with its 90% band (``curves[name]`` is [seeds, T])."""
    for name, x in curves.items():
        m, lo, hi = band(x)
        t = np.arange(len(m))
        ax.plot(t, m, label=name)
        ax.fill_between(t, lo, hi, alpha=0.2)


def group_bars(ax, summary: dict, metric: str, groups) -> None:
    """Grouped bars of ``{metric}_{group}_mean`` per scenario, error bars from the q05/q95 keys."""
    width = 0.8 / len(summary)
    for i, (name, r) in enumerate(summary.items()):
        m, lo, hi = (
            np.array([r[f"{metric}_{g}_{s}"] for g in groups]) for s in ("mean", "q05", "q95")
        )
        ax.bar(
            np.arange(len(groups)) + i * width,
            m,
            width,
            yerr=[m - lo, hi - m],
            label=name,
            capsize=2,
        )
    ax.set_xticks(np.arange(len(groups)) + 0.4 - width / 2, groups)
