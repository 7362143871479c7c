"""Figures for twin reports (matplotlib, written as PNG)."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from twinjax.eval.metrics import _Z  # noqa: E402


def forecast_bands(ax, t, mean, scale, *, color, label):
    """Predictive mean with central 50% and 90% Gaussian bands."""
    for level, alpha in ((0.9, 0.15), (0.5, 0.3)):
        z = _Z[level]
        ax.fill_between(
            t,
            mean - z * scale,
            mean + z * scale,
            color=color,
            alpha=alpha,
            lw=0,
            label=f"{label} {int(level * 100)}%",
        )
    ax.plot(t, mean, color=color, lw=1.2, label=f"{label} mean")


def plot_forecasts(path: Path, individuals, series: dict, title: str) -> None:
    """``series[i]`` has t, y, observed, truth (or None), test_start, pop (mean, scale), personal."""
    fig, axes = plt.subplots(
        len(individuals), 1, figsize=(10, 2.6 * len(individuals)), squeeze=False
    )
    for ax, i in zip(axes[:, 0], individuals, strict=True):
        s = series[i]
        forecast_bands(ax, s["t"], *s["personal"], color="tab:blue", label="personal")
        ax.plot(s["t"], s["pop"][0], color="tab:orange", lw=1, ls="--", label="population mean")
        if s["truth"] is not None:
            ax.plot(s["t"], s["truth"], color="k", lw=0.8, alpha=0.6, label="truth (noise-free)")
        ax.scatter(s["t"][s["observed"]], s["y"][s["observed"]], s=8, color="k", label="observed")
        ax.axvline(s["test_start"], color="gray", ls=":", lw=1)
        ax.set_ylabel(s["name"])
    axes[0, 0].legend(ncol=4, fontsize=7, loc="upper left")
    axes[-1, 0].set_xlabel("grid step (test period right of the dotted line)")
    fig.suptitle(title)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def plot_error_distribution(path: Path, pop: np.ndarray, personal: np.ndarray, metric: str) -> None:
    """Histogram of per-individual errors and a paired scatter (points below y=x improved)."""
    fig, (a, b) = plt.subplots(1, 2, figsize=(10, 4))
    bins = np.histogram_bin_edges(np.concatenate([pop, personal]), bins=20)
    a.hist(pop, bins=bins, alpha=0.6, label="population twin", color="tab:orange")
    a.hist(personal, bins=bins, alpha=0.6, label="personalized twins", color="tab:blue")
    a.set_xlabel(f"per-individual test {metric}")
    a.set_ylabel("individuals")
    a.legend()
    lim = [0, 1.05 * max(pop.max(), personal.max())]
    b.scatter(pop, personal, s=12)
    b.plot(lim, lim, color="gray", ls="--")
    b.set_xlim(lim)
    b.set_ylim(lim)
    b.set_xlabel(f"population {metric}")
    b.set_ylabel(f"personalized {metric}")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def plot_losses(path: Path, losses: np.ndarray, title: str) -> None:
    fig, ax = plt.subplots(figsize=(6, 3.5))
    ax.plot(np.arange(1, len(losses) + 1), losses)
    ax.set_xlabel("step")
    ax.set_ylabel("training NLL")
    ax.set_title(title)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def twin_report_figures(fit, cohort, data_cfg, per_individual, out_dir: Path, *, n_individuals=4):
    """Writes the twin report's PNGs into ``out_dir``; returns their file names."""
    from twinjax.pipeline import forecasts, target_index  # the pipeline imports this module

    f = target_index(cohort, data_cfg)
    history = data_cfg.context + data_cfg.horizon - 1
    window = np.array(fit.arrays.test)
    back = np.asarray(fit.arrays.val) | np.asarray(fit.arrays.train)
    for i in range(cohort.n_individuals):  # show some history before the test period
        first = window[i].argmax()
        window[i, max(first - history, 0) : first] = back[i, max(first - history, 0) : first]
    pop = forecasts(fit, cohort, window, personal=False, history=history)
    per = forecasts(fit, cohort, window, personal=True, history=history)
    chosen = np.linspace(
        0, cohort.n_individuals - 1, min(n_individuals, cohort.n_individuals)
    ).astype(int)
    series = {}
    for i in chosen:
        ok = per.inside[i]
        t = per.t[i][ok]
        series[i] = {
            "name": f"{cohort.subject_ids[i] if cohort.subject_ids else i}",
            "t": t,
            "y": per.y[i][ok][:, f],
            "observed": per.observed[i][ok][:, f],
            "truth": None if cohort.truth is None else cohort.truth[i, t, f],
            "test_start": int(np.asarray(fit.arrays.test[i]).argmax()),
            "pop": (pop.mean[i][ok][:, f], pop.scale[i][ok][:, f]),
            "personal": (per.mean[i][ok][:, f], per.scale[i][ok][:, f]),
        }
    names = ["forecasts.png", "rmse_distribution.png", "population_loss.png"]
    plot_forecasts(
        out_dir / names[0], chosen, series, f"one-step forecasts of {cohort.variables[f]}"
    )
    ok = per_individual["population"]["count"] > 0
    plot_error_distribution(
        out_dir / names[1],
        per_individual["population"]["rmse"][ok],
        per_individual["personalized"]["rmse"][ok],
        "RMSE",
    )
    if len(fit.population_losses):
        plot_losses(out_dir / names[2], fit.population_losses, "population twin")
    else:
        names.pop()
    return names
