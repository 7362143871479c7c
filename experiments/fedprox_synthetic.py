"""FedProx on Synthetic(alpha, beta) (Li et al., MLSys 2020, Figure 1), robustness and DP.

Three parts, each a set of federated runs through :mod:`twinjax.federated`:
1. FedAvg (drops stragglers) vs FedProx mu=0 and mu=``mu`` (keep stragglers' partial work) at
   each straggler fraction, mean over ``seeds`` training seeds on one generated dataset;
2. 20% Byzantine clients (scaled / sign-flipped updates, and NaN updates) against the mean
   (FedAvg), coordinate-wise median and trimmed mean, each also trained without attackers;
3. DP-FedAvg (Poisson client sampling, fixed clipping) with epsilon at ``dp_delta`` from RDP
   and PLD accounting.
"""

from __future__ import annotations

import json
import pathlib

import jax
import matplotlib.pyplot as plt
import numpy as np

from twinjax import federated as fl
from twinjax.config import Config
from twinjax.federated.loop import run_rounds
from twinjax.runtime.files import atomic_write_text
from twinjax_experiments.config import FedproxSynthetic
from twinjax_experiments.report import save_figure, table, write_markdown


def _evaluator(train: fl.ClientData, test: fl.ClientData):
    def evaluate(params):
        return {
            "train_loss": fl.logistic_evaluate(params, train)["loss"],
            "test_accuracy": fl.logistic_evaluate(params, test)["accuracy"],
        }

    return evaluate


def _compiler(c: FedproxSynthetic) -> dict | None:
    return fl.FAST_COMPILE if c.fast_compile else None


def _common(c: FedproxSynthetic, runs: fl.FederatedOptions, **kw) -> dict:
    """The named algorithms' keywords for one set of runs: its settings, the backend, ``kw``."""
    mesh = fl.client_mesh() if c.backend == "shard_map" else None
    execution = fl.Execution(backend=c.backend, mesh=mesh, buckets=c.buckets,
                             compiler_options=_compiler(c))  # fmt: skip
    return {**runs.algorithm_kwargs(), "execution": execution, **kw}


def _robust(c: FedproxSynthetic, name: str) -> fl.Aggregator:
    """The Byzantine runs' aggregator ``name`` behind the NaN/size screen; the robust ones of
    per-step updates and bucket means as configured (the mean stays plain FedAvg)."""
    if name == "mean":
        return fl.screen(fl.mean())
    robust = {"median": fl.median, "trimmed_mean": lambda: fl.trimmed_mean(c.trim_fraction),
              "krum": lambda: fl.krum(0), "multi_krum": lambda: fl.multi_krum(0)}  # fmt: skip
    inner = fl.bucketed(robust[name](), c.byzantine_bucket_size)
    if c.byzantine_per_step:
        inner = fl.per_step(inner, batch_size=c.byzantine.batch_size)
    return fl.screen(inner)


def straggler_runs(c: FedproxSynthetic, train, key, evaluate) -> dict:
    """{(fraction, method): [history per seed]} for FedAvg, FedProx mu=0 and mu=c.mu."""
    out = {}
    for frac in c.straggler_fractions:
        sim = fl.Simulation(straggler_fraction=frac)
        methods = {
            "fedavg": fl.fedavg(fl.logistic_loss, **_common(c, c.straggler, simulation=sim)),
            "fedprox_mu0": fl.fedprox(
                fl.logistic_loss, mu=0.0, **_common(c, c.straggler, simulation=sim)
            ),
            f"fedprox_mu{c.mu:g}": fl.fedprox(
                fl.logistic_loss, mu=c.mu, **_common(c, c.straggler, simulation=sim)
            ),
        }
        for name, algo in methods.items():
            runs = []
            for s in range(c.seeds):
                state = algo.init(fl.logistic_init(), num_clients=train.num_clients)
                _, hist = run_rounds(
                    algo, state, train, jax.random.fold_in(key, s), rounds=c.straggler.rounds,
                    evaluate=evaluate, progress=c.progress, desc=f"{name} stragglers={frac}",
                )  # fmt: skip
                runs.append(hist)
            out[(frac, name)] = runs
    return out


def byzantine_runs(c: FedproxSynthetic, train, key, evaluate) -> dict:
    """Test accuracy (mean of the last rounds) and rejected updates per (attack, aggregator).

    Every aggregator is also run clean (no attackers), FedAvg ("mean") first; all runs share
    the key, hence the sampled clients of every round.
    """
    clean = ["mean"] + [g for g in c.byzantine_aggregators if g != "mean"]
    cases = [("clean", g) for g in clean]
    cases += [(a, g) for a in c.byzantine_attacks for g in c.byzantine_aggregators]
    cases.append(("nan", "mean"))
    out, rejected, curves = {}, {}, {}
    for attack, agg in cases:
        frac = 0.0 if attack == "clean" else c.byzantine_fraction
        byz = fl.Byzantine(fraction=frac, attack=attack if frac else "sign_flip",
                           scale=c.byzantine_scale)  # fmt: skip
        algo = fl.fedavg(fl.logistic_loss, **_common(
            c, c.byzantine, aggregator=_robust(c, agg), simulation=fl.Simulation(byzantine=byz),
            clients_per_round=min(c.byzantine.clients_per_round, train.num_clients),
        ))  # fmt: skip
        state = algo.init(fl.logistic_init(), num_clients=train.num_clients)
        _, hist = run_rounds(algo, state, train, key, rounds=c.byzantine.rounds, evaluate=evaluate,
                             progress=c.progress, desc=f"byzantine {attack} {agg}")  # fmt: skip
        out[(attack, agg)] = _tail_mean(hist, "test_accuracy", c.final_window)
        rejected[(attack, agg)] = sum(h.get("rejected", 0.0) for h in hist)
        curves[(attack, agg)] = [h["test_accuracy"] for h in hist]
    return {"accuracy": out, "rejected": rejected, "curves": curves}


def plot_byzantine(c: FedproxSynthetic, byz: dict):
    """Test accuracy per round, one panel per attack, every aggregator's clean run dashed."""
    attacks = [a for a in dict.fromkeys(a for a, _ in byz["curves"]) if a != "clean"]
    fig, axes = plt.subplots(1, len(attacks), figsize=(4.5 * len(attacks), 3.8), squeeze=False)
    colors = {}
    for ax, attack in zip(axes[0], attacks, strict=True):
        for (a, agg), acc in byz["curves"].items():
            if a not in ("clean", attack):
                continue
            color = colors.setdefault(agg, f"C{len(colors)}")
            style = "--" if a == "clean" else "-"
            ax.plot(np.arange(1, len(acc) + 1), acc, style, color=color, lw=1.2,
                    label=f"{agg} ({'clean' if a == 'clean' else attack})")  # fmt: skip
        ax.set_title(f"{attack}, {100 * c.byzantine_fraction:.0f}% Byzantine")
        ax.set_xlabel("# rounds")
        ax.set_ylim(0.0, 1.0)
        ax.legend(fontsize=7)
    axes[0, 0].set_ylabel("test accuracy")
    return fig


def byzantine_metrics(byz: dict) -> dict:
    """Accuracies, drops in points against clean FedAvg and against the same aggregator run
    clean, and the NaN updates rejected."""
    acc = byz["accuracy"]
    fedavg = acc[("clean", "mean")]
    out = {}
    for (attack, agg), a in acc.items():
        out[f"byzantine_{attack}_{agg}_test_accuracy"] = a
        if attack != "clean":
            out[f"byzantine_{attack}_{agg}_drop_points_vs_clean_fedavg"] = 100 * (fedavg - a)
            same = acc.get(("clean", agg), fedavg)
            out[f"byzantine_{attack}_{agg}_drop_points_vs_clean_same_aggregator"] = 100 * (same - a)
    out["byzantine_nan_rejected_updates"] = byz["rejected"][("nan", "mean")]
    return out


def dp_run(c: FedproxSynthetic, train, key, evaluate) -> dict:
    dp = fl.DPConfig(noise_multiplier=c.dp_noise_multiplier, clip_norm=c.dp_clip_norm,
                     delta=c.dp_delta)  # fmt: skip
    aggregator = fl.screen(fl.dp_mean(dp, expected_clients=c.dp.clients_per_round))
    algo = fl.fedavg(fl.logistic_loss, **_common(c, c.dp, aggregator=aggregator))
    state = algo.init(fl.logistic_init(), num_clients=train.num_clients)
    _, hist = run_rounds(algo, state, train, key, rounds=c.dp.rounds, evaluate=evaluate,
                         progress=c.progress, desc="dp-fedavg")  # fmt: skip
    q = fl.sampling_rate(c.dp.clients_per_round, train.num_clients)
    eps = {
        acc: fl.epsilon(c.dp_noise_multiplier, q, c.dp.rounds, delta=c.dp_delta, accountant=acc)
        for acc in ("rdp", "pld")
    }
    return {"test_accuracy": hist[-1]["test_accuracy"], "sampling_rate": q, **eps}


def _tail_mean(hist: list[dict], key: str, window: int) -> float:
    return float(np.mean([h[key] for h in hist[-window:]]))


def _curves(runs: list[list[dict]], key: str) -> tuple[np.ndarray, np.ndarray]:
    rounds = np.array([h["round"] for h in runs[0]])
    return rounds, np.mean([[h[key] for h in run] for run in runs], axis=0)


def plot_figure1(c: FedproxSynthetic, runs: dict):
    fracs = c.straggler_fractions
    fig, axes = plt.subplots(2, len(fracs), figsize=(4 * len(fracs), 6), squeeze=False)
    for j, frac in enumerate(fracs):
        for (f, name), r in runs.items():
            if f != frac:
                continue
            for i, key in enumerate(("train_loss", "test_accuracy")):
                x, y = _curves(r, key)
                axes[i, j].plot(x, y, label=name)
        axes[0, j].set_title(f"{int(round(100 * frac))}% stragglers")
        axes[1, j].set_xlabel("# rounds")
    axes[0, 0].set_ylabel("training loss")
    axes[1, 0].set_ylabel("test accuracy")
    axes[1, 0].legend()
    fig.suptitle(f"Synthetic({c.alpha:g},{c.beta:g}), mean of {c.seeds} seeds")
    return fig


def straggler_metrics(c: FedproxSynthetic, runs: dict) -> tuple[dict, list]:
    """Final / last-rounds accuracy and loss per (fraction, method), FedProx gain at the top
    straggler fraction, and the report's table rows."""
    metrics, rows, w = {}, [], c.final_window
    for (frac, name), r in runs.items():
        final = [h[-1]["test_accuracy"] for h in r]
        tag = f"stragglers{int(round(100 * frac))}_{name}"
        metrics[f"test_accuracy_{tag}_mean"] = float(np.mean(final))
        metrics[f"test_accuracy_{tag}_std"] = float(np.std(final))
        metrics[f"train_loss_{tag}_mean"] = float(np.mean([h[-1]["train_loss"] for h in r]))
        tail = [_tail_mean(h, "test_accuracy", w) for h in r]
        metrics[f"test_accuracy_last{w}_{tag}_mean"] = float(np.mean(tail))
        loss = metrics[f"train_loss_{tag}_mean"]
        rows.append((frac, name, np.mean(final), np.std(final), np.mean(tail), loss))
    top = int(round(100 * max(c.straggler_fractions)))
    for last in ("", f"last{w}_"):  # final round, mean of the last w rounds
        gain = (metrics[f"test_accuracy_{last}stragglers{top}_fedprox_mu{c.mu:g}_mean"]
                - metrics[f"test_accuracy_{last}stragglers{top}_fedavg_mean"])  # fmt: skip
        metrics[f"fedprox_mu{c.mu:g}_minus_fedavg_points_{last}at_stragglers{top}"] = 100 * gain
    return metrics, rows


def run(cfg: Config, out_dir: pathlib.Path) -> dict:
    c: FedproxSynthetic = cfg.experiment
    key = jax.random.key(cfg.seed)
    k_strag, k_byz, k_dp = jax.random.split(key, 3)
    train, test = fl.synthetic_alpha_beta(
        cfg.seed, alpha=c.alpha, beta=c.beta, num_clients=c.num_clients, max_samples=c.max_samples
    )
    evaluate = _evaluator(train, test)
    metrics: dict = {"num_train_samples": int(train.count.sum()), "num_clients": c.num_clients}
    runs, rows = {}, []
    if c.straggler_fractions:  # experiment.straggler_fractions=[] skips part 1
        runs = straggler_runs(c, train, k_strag, evaluate)
        part, rows = straggler_metrics(c, runs)
        metrics.update(part)
    if c.dp.rounds > 0:
        fl.check_dp_sampling(c.dp, "experiment.dp")
    byz = None
    if c.byzantine.rounds > 0:
        b_train, b_test = fl.synthetic_alpha_beta(
            cfg.seed, alpha=c.alpha, beta=c.beta, num_clients=c.byzantine_num_clients,
            max_samples=c.max_samples, iid=c.byzantine_iid,
        )  # fmt: skip
        byz = byzantine_runs(c, b_train, k_byz, _evaluator(b_train, b_test))
        metrics.update(byzantine_metrics(byz))
        metrics["byzantine_num_clients"] = c.byzantine_num_clients
    dp = dp_run(c, train, k_dp, evaluate) if c.dp.rounds > 0 else None
    if dp:
        metrics.update({
            "dp_test_accuracy": dp["test_accuracy"], "dp_epsilon_rdp": dp["rdp"],
            "dp_epsilon_pld": dp["pld"], "dp_delta": c.dp_delta,
            "dp_noise_multiplier": c.dp_noise_multiplier, "dp_sampling_rate": dp["sampling_rate"],
            "dp_rounds": c.dp.rounds,
        })  # fmt: skip
    # sweeps: the final training loss of the straggler runs (no validation split in this
    # benchmark; Li et al. compare training loss); NaN when experiment.straggler_fractions=[]
    losses = [v for k, v in metrics.items() if k.startswith("train_loss_")]
    metrics["objective"] = float(np.mean(losses)) if losses else float("nan")
    write_report(out_dir, c, metrics, runs, rows, byz, dp)
    return metrics


def write_report(
    out_dir: pathlib.Path, c: FedproxSynthetic, metrics: dict, runs: dict, rows, byz, dp
) -> None:
    """Per part that ran: its figure (straggler runs: also every round's history,
    histories.json) and its section of report.md."""
    lines = [f"# FedProx on Synthetic({c.alpha:g},{c.beta:g})"]
    if runs:
        save_figure(plot_figure1(c, runs), out_dir, "figure1.png", dpi=120)
        histories = {f"{f}/{n}": r for (f, n), r in runs.items()}
        atomic_write_text(out_dir / "histories.json", json.dumps(histories))
        lines += _straggler_lines(c, rows, metrics)
    if byz:
        save_figure(plot_byzantine(c, byz), out_dir, "byzantine.png", dpi=120)
        lines += _byzantine_lines(c, byz, metrics)
    if dp:
        lines += ["", "## DP-FedAvg", "",
                  f"Noise multiplier {c.dp_noise_multiplier}, clip {c.dp_clip_norm}, Poisson "
                  f"sampling rate {dp['sampling_rate']:.3f}, {c.dp.rounds} rounds: "
                  f"epsilon = {dp['rdp']:.2f} (RDP) / {dp['pld']:.2f} (PLD) at delta = "
                  f"{c.dp_delta:g}; test accuracy {100 * dp['test_accuracy']:.1f}%."]  # fmt: skip
    write_markdown(out_dir, lines)


def _straggler_lines(c: FedproxSynthetic, rows, metrics: dict) -> list[str]:
    s = c.straggler
    lines = [
        "", f"{c.num_clients} devices, {metrics['num_train_samples']} training samples, "
        f"{s.clients_per_round} devices per round ({s.sampling} sampling, {s.weighting} "
        f"average), lr {s.local_lr}, batch {s.batch_size}, {s.local_epochs} local epochs, "
        f"{s.rounds} rounds, {c.seeds} seeds. FedAvg drops stragglers; FedProx keeps their "
        "partial work (1..E-1 epochs).", "",
        "![Figure 1](figure1.png)", "",
    ]  # fmt: skip
    header = ["stragglers", "method", "final test accuracy (mean ± std over seeds)",
              f"mean of last {c.final_window} rounds", "final training loss"]  # fmt: skip
    cells = [
        [f"{100 * frac:.0f}%", name, f"{100 * m:.1f} ± {100 * s:.1f}", f"{100 * tail:.1f}",
         f"{loss:.3f}"] for frac, name, m, s, tail, loss in rows
    ]  # fmt: skip
    return lines + table(header, cells)


def _byzantine_lines(c: FedproxSynthetic, byz: dict, metrics: dict) -> list[str]:
    per_step = ("median / trimmed mean of per-local-step updates times the mean step count"
                if c.byzantine_per_step else "aggregators of the raw updates")  # fmt: skip
    if c.byzantine_bucket_size > 1:
        per_step += (f"; median/trimmed mean of {c.byzantine_bucket_size}-client bucket means "
                     "(Karimireddy et al. 2022), buckets redrawn every round")  # fmt: skip
    lines = ["", f"## {100 * c.byzantine_fraction:.0f}% Byzantine clients "
             f"({c.byzantine.rounds} rounds, attack scale {c.byzantine_scale:g})", "",
             f"Data: {'Synthetic-IID' if c.byzantine_iid else 'Synthetic as above'}, "
             f"{c.byzantine_num_clients} devices (a population of its own, generated by the "
             "same procedure: with few devices the same few attackers' persistent update "
             "directions bias the median, see experiments/config.py), "
             f"{c.byzantine.clients_per_round} per round ({c.byzantine.sampling} sampling); "
             f"clients with id < {c.byzantine_fraction:g} x {c.byzantine_num_clients} attack "
             f"in every round they are sampled; trimmed mean drops {c.trim_fraction:g} per side; "
             f"mean = FedAvg, {per_step}. Accuracy: mean of the last {c.final_window} rounds; "
             "drops in points against clean FedAvg and against the same aggregator run clean.",
             "", "![Byzantine runs](byzantine.png)", "",
             ]  # fmt: skip
    table_rows = []
    for (attack, agg), acc in byz["accuracy"].items():
        key = f"byzantine_{attack}_{agg}_drop_points_vs_clean"
        drops = ("", "") if attack == "clean" else (
            f"{metrics[key + '_fedavg']:.1f}", f"{metrics[key + '_same_aggregator']:.1f}")  # fmt: skip
        rej = byz["rejected"][(attack, agg)]
        table_rows.append([attack, agg, f"{100 * acc:.1f}", *drops, f"{rej:.0f}"])
    header = ["attack", "aggregator", "test accuracy", "drop vs clean FedAvg",
              "drop vs clean same aggregator", "rejected updates"]  # fmt: skip
    return lines + table(header, table_rows)
