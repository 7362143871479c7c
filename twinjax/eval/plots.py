"""Figures for twin reports (matplotlib, written as PNG)."""

from pathlib import Path

import jax
import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from scipy.special import ndtri  # noqa: E402

from twinjax.data import Cohort, Series, denormalize  # noqa: E402
from twinjax.runtime.files import replacing  # noqa: E402
from twinjax.twins import forecast  # noqa: E402


def forecast_bands(ax, t, mean, scale, *, color, label):
    """Predictive mean with central 50% and 90% Gaussian bands."""
    for level, alpha in ((0.9, 0.15), (0.5, 0.3)):
        z = float(ndtri(0.5 + level / 2))
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
    with replacing(path) as tmp:  # whole or not at all
        fig.savefig(tmp, dpi=110)
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
    with replacing(path) as tmp:  # whole or not at all
        fig.savefig(tmp, dpi=110)
    plt.close(fig)


def plot_losses(path: Path, losses: np.ndarray, title: str) -> None:
    fig, ax = plt.subplots(figsize=(6, 3.5))
    ax.plot(np.arange(1, len(losses) + 1), losses)
    ax.set_xlabel("step")
    ax.set_ylabel("training NLL")
    ax.set_title(title)
    fig.tight_layout()
    with replacing(path) as tmp:  # whole or not at all
        fig.savefig(tmp, dpi=110)
    plt.close(fig)


def counterfactual_rollouts(
    fit, i: int, *, horizon: int, history: int, kind: int, n_samples: int, key
) -> dict:
    """Sampled rollouts of individual ``i``'s personal twin from the start of its test period,
    under the plan that was actually followed and under that plan plus one extra intervention of
    ``kind`` (one mean amount) at the first step: "what if this person took X now?"."""
    a = fit.arrays
    start = int(np.asarray(a.test[i]).argmax())
    hist: Series = a.series.at(i).window(max(start - history, 0), start)
    plan = a.series.interventions[i, start : start + horizon]
    params = jax.tree.map(lambda x: x[i], fit.personal)
    stats = jax.tree.map(lambda x: x[i] if x.ndim == 2 else x, fit.scalers.values)
    keys = jax.random.split(key, n_samples)

    def sample(k, plan):  # a trajectory: each step drawn from the twin's predictive Gaussian
        k_path, k_last = jax.random.split(k)
        mean, scale = forecast(params, fit.spec, hist, plan, key=k_path)
        return mean + scale * jax.random.normal(k_last, mean.shape)

    ensemble = jax.jit(jax.vmap(sample, in_axes=(0, None)))  # one compilation for both plans

    def roll(plan):
        return np.asarray(denormalize(stats, ensemble(keys, plan)))

    extra = plan.at[0, kind].add(1.0)
    return {
        "t": start + np.arange(plan.shape[0]),
        "followed": roll(plan),
        "extra": roll(extra),
        "doses_followed": np.asarray(plan[:, kind]),
        "doses_extra": np.asarray(extra[:, kind]),
    }


def plot_counterfactual(
    path: Path, roll: dict, truth, f: int, names: tuple, kind_name: str
) -> None:
    fig, ax = plt.subplots(figsize=(8, 3.8))
    for key, color, label in (
        ("followed", "tab:blue", "plan followed"),
        ("extra", "tab:red", f"plan + one extra {kind_name} now"),
    ):
        q = np.quantile(roll[key][..., f], [0.05, 0.25, 0.5, 0.75, 0.95], axis=0)
        ax.fill_between(roll["t"], q[0], q[4], color=color, alpha=0.12, lw=0)
        ax.fill_between(roll["t"], q[1], q[3], color=color, alpha=0.25, lw=0)
        ax.plot(roll["t"], q[2], color=color, label=f"{label} (median, 50%/90%)")
    if truth is not None:
        ax.plot(roll["t"], truth, color="k", lw=0.8, label="truth under the followed plan")
    ax.set_xlabel("grid step")
    ax.set_ylabel(names[f])
    ax.set_title("counterfactual rollouts of one personal twin (sampled trajectories)")
    ax.legend(fontsize=7)
    fig.tight_layout()
    with replacing(path) as tmp:  # whole or not at all
        fig.savefig(tmp, dpi=110)
    plt.close(fig)


def twin_report_figures(
    fit,
    cohort: Cohort,
    per_individual: dict,
    out_dir: Path,
    *,
    target: int,
    history: int,
    key,
    n_individuals: int = 4,
) -> list[str]:
    """Writes the twin report's PNGs into ``out_dir``; returns their file names.

    ``fit`` (a ``pipeline.TwinFit``) holds ``arrays``, ``spec``, ``personal``, ``scalers`` and
    ``population_losses``, ``fit.forecasts(cohort, segment, personal=, history=)`` gives
    :class:`~twinjax.eval.Forecasts` and ``fit.take(index)`` the fit of some individuals:
    forecasts are computed for the ``n_individuals`` plotted only (a fixed cost in the cohort's
    size; the error histogram reads ``per_individual``).
    """
    f = target
    chosen = np.linspace(
        0, cohort.n_individuals - 1, min(n_individuals, cohort.n_individuals)
    ).astype(int)
    sample, cohort_sample = fit.take(chosen), cohort.take(chosen)  # only the plotted ones
    window = np.array(sample.arrays.test)
    back = np.asarray(sample.arrays.val) | np.asarray(sample.arrays.train)
    for j in range(len(chosen)):  # show some history before the test period
        first = window[j].argmax()
        window[j, max(first - history, 0) : first] = back[j, max(first - history, 0) : first]
    pop = sample.forecasts(cohort_sample, window, personal=False, history=history)
    per = sample.forecasts(cohort_sample, window, personal=True, history=history)
    series = {}
    for j, i in enumerate(chosen):
        ok = per.inside[j]
        t = per.t[j][ok]
        series[i] = {
            "name": f"{cohort.subject_ids[i] if cohort.subject_ids else i}",
            "t": t,
            "y": per.y[j][ok][:, f],
            "observed": per.observed[j][ok][:, f],
            "truth": None if cohort.truth is None else cohort.truth[i, t, f],
            "test_start": int(np.asarray(sample.arrays.test[j]).argmax()),
            "pop": (pop.mean[j][ok][:, f], pop.scale[j][ok][:, f]),
            "personal": (per.mean[j][ok][:, f], per.scale[j][ok][:, f]),
        }
    names = ["forecasts.png", "rmse_distribution.png", "counterfactual.png", "population_loss.png"]
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
    i = int(chosen[0])
    if cohort.interventions.shape[-1]:  # an observations-only cohort has no "what if" to show
        roll = counterfactual_rollouts(
            fit,
            i,
            horizon=min(24, int(np.asarray(fit.arrays.test[i]).sum())),
            history=history,
            kind=0,
            n_samples=200,
            key=key,
        )
        truth = None if cohort.truth is None else cohort.truth[i, roll["t"], f]
        kind_name = cohort.intervention_kinds[0] if cohort.intervention_kinds else "intervention"
        plot_counterfactual(out_dir / names[2], roll, truth, f, cohort.variables, kind_name)
    else:
        names.remove("counterfactual.png")
    if len(fit.population_losses):
        plot_losses(out_dir / "population_loss.png", fit.population_losses, "population twin")
    else:
        names.pop()
    return names


def panel_forecasts(out, panel, held, n: int):
    """The first ``n`` subjects of a :class:`~twinjax.eval.panel.Panel`, one row each: its visits,
    and two forecasts (:class:`~twinjax.eval.score.Forecast`) as means with 90% bands: ``held``
    (of held-out visits, orange) and ``out`` (ahead, blue). Returns the figure."""
    idx = np.arange(min(n, len(panel.n)))
    fig, axes = plt.subplots(len(idx), 1, figsize=(8, 2.3 * len(idx)), squeeze=False)
    for ax, i in zip(axes[:, 0], idx, strict=True):
        seen = slice(0, panel.n[i])
        ax.plot(panel.time[i, seen], panel.y[i, seen], "k.", ms=4, label="visits")
        for fc, color, label in ((held, "tab:orange", "held-out forecast"),
                                 (out, "tab:blue", "forecast")):  # fmt: skip
            lo, hi = fc.interval(0.9)
            t = fc.time[i]
            ax.fill_between(t, lo[i], hi[i], color=color, alpha=0.25, lw=0)
            ax.plot(t, fc.mean[i], color=color, label=f"{label} (90% band)")
        ax.set_ylabel(str(panel.subject[i]))
    axes[0, 0].legend(fontsize=7)
    axes[-1, 0].set_xlabel("time")
    return fig
