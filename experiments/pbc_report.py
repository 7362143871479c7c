"""report.md and figures of the pbc_twins experiment (computed numbers in, files out)."""

from __future__ import annotations

from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np

from twinjax_experiments.config import PbcTwins
from twinjax_experiments.pbc_data import Visits
from twinjax_experiments.report import images, save_figure, table, write_markdown

LABELS = {
    "twin_population": "recurrent twin (population)",
    "twin_personalized": "recurrent twin (personalized)",
    "gp": "GP twin",
    "growth": "hierarchical growth model",
    "locf": "last value carried forward",
}
TWINS = ("twin_population", "twin_personalized", "gp", "growth")


def write_report(out_dir: Path, c: PbcTwins, m: dict, v: Visits, preds: dict) -> None:
    figures = [
        save_figure(_calibration_figure(m), out_dir, "calibration.png"),
        save_figure(_trajectories(v, preds, c), out_dir, "trajectories_bili.png"),
    ]
    write_markdown(out_dir, [
        "# PBC twins: next-visit labs of the Mayo primary biliary cirrhosis trial",
        "",
        *_about(m, c),
        "",
        "## Accuracy and 90% intervals at the held-out last visit",
        "",
        *_lab_tables(m, c),
        "",
        *_verdicts(m),
        "",
        "## Calibration (coverage at several nominal levels, all labs pooled)",
        "",
        *_calibration_table(m),
        "",
        "## By sex and by arm",
        "",
        *_group_tables(m),
        "",
        "## Switching the arm: the models' effect on bilirubin vs the trial",
        "",
        *_counterfactual(m),
        "",
        *_diagnostics(m),
        "",
        *images(figures),
        "",
        f"Wall time {m['runtime_seconds']:.0f} s ("
        + ", ".join(f"{k} {s:.0f} s" for k, s in m["seconds"].items()) + ").",
    ])  # fmt: skip


def _about(m: dict, c: PbcTwins) -> list[str]:
    d = m["data"]
    logged = ", ".join(d["log_labs"]) or "none"
    return [
        f"{d['patients']} patients with at least {c.min_visits} visits ({d['visits']} visits). "
        "Each patient's last visit is held out and forecast from the visits before it; no model "
        "is fitted on it. Targets per lab (observed at the last visit and earlier): "
        + ", ".join(f"{k} {n}" for k, n in d["targets_per_lab"].items()) + ".",
        "",
        f"Skewed labs are modelled and scored as natural logs: **{logged}** (their RMSE, MAE "
        "and widths are in log units; e.g. an RMSE of 0.3 in log bilirubin is about a 35% "
        "error). The recurrent twins run on the visit index with the years to the next visit "
        "as an input, so one step is always the next visit; they train on the visits before the "
        "last two, and the second-to-last visit (their input when they forecast the last) "
        "chooses the population twin's training length, each personal twin's parameters and "
        "the interval recalibration. The GP twins and the growth model are fitted on every "
        "visit before the last. LOCF's interval is the last value plus the empirical quantiles "
        "of the cohort's visit-to-visit changes before the last visit.",
    ]  # fmt: skip


def _lab_tables(m: dict, c: PbcTwins) -> list[str]:
    rows = []
    for lab, by in m["labs"].items():
        base = by["locf"]["rmse"]
        for name, s in by.items():
            rows.append([
                lab + (" (log)" if lab in c.log_labs else ""), LABELS[name], f"{s['rmse']:.3f}",
                f"{s['mae']:.3f}", f"{s['coverage']:.3f}", f"{s['width']:.3f}",
                f"{s['rmse'] / base:.3f}", s["n"],
            ])  # fmt: skip
    header = ["lab", "model", "RMSE", "MAE", "90% coverage", "90% width", "RMSE / LOCF", "n"]
    return table(header, rows)


def _verdicts(m: dict) -> list[str]:
    lines = []
    for lab, by in m["labs"].items():
        base = by["locf"]["rmse"]
        worse = [LABELS[k] for k in TWINS if by[k]["rmse"] >= base]
        better = [LABELS[k] for k in TWINS if by[k]["rmse"] < base]
        if not better:
            lines.append(
                f"- **{lab}: no model beats last value carried forward** (RMSE {base:.3f})."
            )
        elif worse:
            lines.append(f"- {lab}: beaten by LOCF (RMSE {base:.3f}): " + ", ".join(worse)
                         + "; better than LOCF: " + ", ".join(better) + ".")  # fmt: skip
        else:
            lines.append(f"- {lab}: every model beats LOCF (RMSE {base:.3f}).")
    return ["Against the baseline (RMSE):", "", *lines]


def _calibration_table(m: dict) -> list[str]:
    levels = list(next(iter(m["calibration"].values())))
    rows = [
        [LABELS[k], *(f"{cov[lv]:.3f}" for lv in levels)] for k, cov in m["calibration"].items()
    ]
    return table(["model", *(f"nominal {float(lv):.2f}" for lv in levels)], rows)


def _calibration_figure(m: dict):
    fig, ax = plt.subplots(figsize=(4.8, 4.4))
    for name, cov in m["calibration"].items():
        lv = [float(k) for k in cov]
        ax.plot(lv, list(cov.values()), "o-", label=LABELS[name])
    ax.plot([0.4, 1.0], [0.4, 1.0], "k:", lw=1)
    ax.set_xlabel("nominal coverage")
    ax.set_ylabel("empirical coverage (last visit, all labs)")
    ax.legend(fontsize=7)
    ax.set_title("Reliability of central intervals")
    return fig


def _group_tables(m: dict) -> list[str]:
    groups = list(m["groups"])
    rows = []
    for name in LABELS:
        cells = [LABELS[name]]
        for g in groups:
            r = m["groups"][g][name]
            b = r["labs"].get("bili", {})
            cells.append(f"{b.get('rmse', np.nan):.3f} / {r['coverage90_all_labs']:.2f}")
        rows.append(cells)
    n = [m["groups"][g]["locf"]["labs"].get("bili", {}).get("n", 0) for g in groups]
    header = ["model", *(f"{g} (n={k})" for g, k in zip(groups, n, strict=True))]
    return [
        "Each cell: RMSE of log bilirubin / 90% coverage over all labs. Per-lab figures for each "
        "group are in metrics.json (`groups`).",
        "",
        *table(header, rows),
    ]


def _counterfactual(m: dict) -> list[str]:
    t = m["trial"]
    nv, py = t["next_visit_change"], t["change_per_year"]
    lo, hi = nv["ci95"]
    rows = [[
        "trial (randomized, from the data): change from the previous visit to the last",
        f"{nv['difference']:+.3f}", f"95% CI [{lo:+.3f}, {hi:+.3f}]",
        f"{nv['n_dpen']} vs {nv['n_placebo']}",
    ], [
        "trial (randomized, from the data): change per year, entry to last visit",
        f"{py['difference']:+.3f}", f"95% CI [{py['ci95'][0]:+.3f}, {py['ci95'][1]:+.3f}]",
        f"{py['n_dpen']} vs {py['n_placebo']}",
    ]]  # fmt: skip
    cf = m["counterfactual"]
    for name in ("twin_population", "twin_personalized"):
        e = cf["twins"][name]
        rows.append([f"{LABELS[name]}: arm input switched", f"{e['mean_effect']:+.3f}",
                     f"patients 5-95% [{e['patients_q05']:+.3f}, {e['patients_q95']:+.3f}]",
                     e["n"]])  # fmt: skip
    g = cf.get("growth") or {}
    if g:
        rows.append([f"{LABELS['growth']}: arm covariate switched", f"{g['mean_effect']:+.3f}",
                     f"posterior 90% [{g['posterior_q05']:+.3f}, {g['posterior_q95']:+.3f}]",
                     g["n"]])  # fmt: skip
    verdict = [_verdict(LABELS[k], cf["twins"][k]["mean_effect"], nv["ci95"], "next-visit change")
               for k in ("twin_population", "twin_personalized")]  # fmt: skip
    if g:
        verdict.append(_verdict(LABELS["growth"] + " (slope effect per year)",
                                g["beta_slope_per_year"], py["ci95"], "change per year"))  # fmt: skip
        rows.append([f"{LABELS['growth']}: arm effect on the slope (per year)",
                     f"{g['beta_slope_per_year']:+.3f}",
                     f"posterior 90% [{g['beta_slope_q05']:+.3f}, {g['beta_slope_q95']:+.3f}]",
                     g["n"]])  # fmt: skip
    return [
        "Effect = forecast of log bilirubin at each patient's last visit under D-penicillamine "
        "minus under placebo, the patient's history unchanged, averaged over patients with a "
        "bilirubin target (negative: D-penicillamine lowers bilirubin). Given the same history, "
        "this equals the difference in forecast change from the previous visit, so the first "
        "trial row is its randomized counterpart. The GP twins have no covariates and no "
        "counterfactual. The growth model's level effect adds its arm effect on the intercept "
        "(zero by randomization, up to chance) to the slope effect times the years since entry; "
        "its slope effect is compared with the trial's change per year.",
        "",
        *table(["estimate", "D-pen minus placebo (log bili)", "interval", "n"], rows),
        "",
        *verdict,
    ]


def _diagnostics(m: dict) -> list[str]:
    rows = [[lab, *(str(v) for v in d.values())] for lab, d in m["growth_diagnostics"].items()]
    if not rows:
        return []
    keys = list(next(iter(m["growth_diagnostics"].values())))
    return ["Growth-model fits:", "", *table(["lab", *keys], rows)]


def _trajectories(v: Visits, preds: dict, c: PbcTwins):
    k = list(v.cohort.variables).index("bili")
    ok = np.flatnonzero(v.target[:, k])
    order = ok[np.argsort(-v.cohort.lengths[ok], kind="stable")]
    pick = order[: c.n_plot_patients]
    fig, axes = plt.subplots(len(pick), len(preds), figsize=(2.6 * len(preds), 2.1 * len(pick)),
                             squeeze=False, sharey="row")  # fmt: skip
    for r, i in enumerate(pick):
        n = v.cohort.lengths[i]
        x = v.days[i, :n] / 365.25
        obs = v.cohort.mask[i, :n, k]
        y = v.cohort.values[i, :n, k]
        for col, (name, p) in enumerate(preds.items()):
            ax = axes[r, col]
            lo, hi = (a[i, :n, k] for a in p.intervals[0.9])
            has = np.isfinite(p.mean[i, :n, k])
            ax.fill_between(x[has], lo[has], hi[has], alpha=0.3, color=f"C{col}")
            ax.plot(x[has], p.mean[i, :n, k][has], "-", color=f"C{col}", lw=1)
            ax.plot(x[:-1][obs[:-1]], y[:-1][obs[:-1]], "k.", ms=5)
            ax.plot(x[-1], y[-1], "r*", ms=9)
            if r == 0:
                ax.set_title(LABELS[name], fontsize=8)
            if col == 0:
                ax.set_ylabel(f"patient {v.cohort.subject_ids[i]}\nlog bili", fontsize=8)
            ax.tick_params(labelsize=7)
        axes[-1, 0].set_xlabel("years since entry", fontsize=8)
    fig.suptitle("Log bilirubin: one-step means and 90% bands (red star: held-out last visit)",
                 fontsize=9)  # fmt: skip
    return fig


def _verdict(name: str, effect: float, ci: list[float], what: str) -> str:
    lo, hi = ci
    if lo <= effect <= hi:
        return (f"- {name}: {effect:+.3f} is inside the trial's 95% CI of the {what} "
                f"[{lo:+.3f}, {hi:+.3f}]: consistent with the randomized comparison.")  # fmt: skip
    return (f"- {name}: {effect:+.3f} is **outside the trial's 95% CI of the {what} "
            f"[{lo:+.3f}, {hi:+.3f}]: this arm effect is wrong** (the randomized data, and the "
            "trial, show no such effect of D-penicillamine).")  # fmt: skip
