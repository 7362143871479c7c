"""Plots for Bayesian twins (matplotlib, Agg backend): fits with credible bands, PIT, coverage."""

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from twinjax.runtime.files import replacing  # noqa: E402


def _panels(n: int):
    """A grid of up to 4 columns with one panel per individual (the rest switched off)."""
    cols = min(4, n)
    rows = int(np.ceil(n / cols))
    fig, axes = plt.subplots(rows, cols, figsize=(3.2 * cols, 2.5 * rows), squeeze=False)
    for ax in axes.flat[n:]:
        ax.axis("off")
    return fig, axes.flat[:n]


def _finish(fig, axes, path: Path, title: str, legend_size: int) -> None:
    axes[0].legend(fontsize=legend_size)
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    with replacing(path) as tmp:  # whole or not at all
        fig.savefig(tmp, dpi=110)
    plt.close(fig)


def plot_individual_fits(
    path: Path,
    grid,
    draws,
    times,
    values,
    mask,
    *,
    names=(),
    level: float = 0.9,
    ylabel: str = "value",
    title: str = "",
) -> None:
    """One panel per individual: observations, posterior median and central ``level`` band.

    ``grid`` is ``[individuals, G]``, ``draws`` ``[draws, individuals, G]``.
    """
    fig, axes = _panels(draws.shape[1])
    a = (1 - level) / 2
    lo, med, hi = np.quantile(draws, [a, 0.5, 1 - a], axis=0)
    for i, ax in enumerate(axes):
        ax.fill_between(grid[i], lo[i], hi[i], alpha=0.3, label=f"{int(100 * level)}% band")
        ax.plot(grid[i], med[i], lw=1.2, label="median")
        m = np.asarray(mask[i], bool)
        ax.plot(np.asarray(times[i])[m], np.asarray(values[i])[m], "k.", ms=4, label="observed")
        ax.set_title(str(names[i]) if len(names) else f"individual {i}", fontsize=9)
        ax.set_ylabel(ylabel, fontsize=8)
    _finish(fig, axes, path, title, 7)


def plot_forecasts(
    path: Path,
    grid,
    curves,
    times,
    values,
    mask,
    forecast_times,
    forecast_band,
    *,
    held_values=None,
    names=(),
    level: float = 0.9,
    title: str = "",
) -> None:
    """One panel per individual: observations, the fitted curve (median and central ``level``
    band, noise-free) on ``grid`` through the forecast times, and the forecast band.

    ``grid`` is ``[individuals, G]``, ``curves`` ``[draws, individuals, G]``; ``forecast_band``
    is ``(lower, median, upper)``, each ``[individuals, T]`` at ``forecast_times``; ``held_values``
    (``[individuals, T]``, optional) are observations at the forecast times, drawn as crosses.
    """
    fig, axes = _panels(curves.shape[1])
    a = (1 - level) / 2
    lo, med, hi = np.quantile(curves, [a, 0.5, 1 - a], axis=0)
    f_lo, f_med, f_hi = (np.asarray(b) for b in forecast_band)
    pct = int(100 * level)
    for i, ax in enumerate(axes):
        ax.fill_between(grid[i], lo[i], hi[i], alpha=0.3, label=f"fit, {pct}% band")
        ax.plot(grid[i], med[i], lw=1.2, label="fit, median")
        ft = np.asarray(forecast_times[i])
        ax.fill_between(ft, f_lo[i], f_hi[i], color="C1", alpha=0.3,
                        label=f"forecast, {pct}% predictive")  # fmt: skip
        ax.plot(ft, f_med[i], "o-", color="C1", ms=3, lw=1)
        m = np.asarray(mask[i], bool)
        ax.plot(np.asarray(times[i])[m], np.asarray(values[i])[m], "k.", ms=4, label="observed")
        if held_values is not None:
            ax.plot(ft, np.asarray(held_values[i]), "rx", ms=5, label="held out")
        ax.set_title(str(names[i]) if len(names) else f"individual {i}", fontsize=9)
    _finish(fig, axes, path, title, 6)


def plot_pit_histogram(path: Path, pit, *, bins: int = 10, title: str = "PIT histogram") -> None:
    """Histogram of PIT values; a calibrated forecaster is flat at 1 (dashed)."""
    fig, ax = plt.subplots(figsize=(4.5, 3.2))
    ax.hist(np.ravel(pit), bins=bins, range=(0, 1), density=True, edgecolor="white")
    ax.axhline(1.0, ls="--", color="k", lw=1)
    ax.set_xlabel("PIT")
    ax.set_ylabel("density")
    ax.set_title(title)
    fig.tight_layout()
    with replacing(path) as tmp:  # whole or not at all
        fig.savefig(tmp, dpi=110)
    plt.close(fig)


def plot_coverage(path: Path, levels, observed, *, title: str = "interval coverage") -> None:
    """Empirical coverage of central intervals against their nominal level.

    ``observed``: one curve, or ``{label: curve}`` for several forecasters.
    """
    curves = observed if isinstance(observed, dict) else {"": observed}
    fig, ax = plt.subplots(figsize=(4, 4))
    ax.plot([0, 1], [0, 1], "k--", lw=1)
    for label, curve in curves.items():
        ax.plot(levels, curve, "o-", label=label or None)
    if len(curves) > 1:
        ax.legend(fontsize=8)
    ax.set_xlabel("nominal level")
    ax.set_ylabel("empirical coverage")
    ax.set_title(title)
    fig.tight_layout()
    with replacing(path) as tmp:  # whole or not at all
        fig.savefig(tmp, dpi=110)
    plt.close(fig)
