"""DP-FedAvg at population scale: user-level (epsilon, delta) for the whole run at 10,000 clients.

McMahan et al. (2018) showed that DP-FedAvg becomes useful once a round averages many clients:
the Gaussian noise on the sum of clipped updates is divided by the expected number of clients
per round, while the privacy cost depends on the sampling rate and the number of rounds. Here:

1. a population of ``num_clients`` Synthetic(alpha, beta) devices with one shared model
   (:func:`~twinjax.federated.synthetic_alpha_beta` with ``spread``), heavy-tailed sizes;
2. the noise multiplier ``z`` that spends ``target_epsilon`` at ``delta`` over ``rounds``
   Poisson-sampled rounds (dp-accounting's calibration); the clip norm adapts to a quantile of
   the update norms (Andrew et al. 2021) and its noisy count takes its share of ``z``;
3. DP-FedAvg and the same FedAvg without clipping or noise (same sampling, clients per round,
   rounds, local work, model and keys), test accuracy of both, epsilon by RDP and PLD, wall
   time, rounds per second and the padding overhead of lockstep local SGD.
"""

from __future__ import annotations

import pathlib
import time

import jax
import matplotlib.pyplot as plt
import numpy as np
from scipy.stats import binom

from twinjax import federated as fl
from twinjax.config import Config
from twinjax.federated.sampling import poisson_slots
from twinjax_experiments.config import DpPopulation
from twinjax_experiments.report import save_figure, table, write_markdown


def dp_config(c: DpPopulation, sampling_rate: float) -> fl.DPConfig:
    """The mechanism: ``z`` calibrated to ``target_epsilon`` for the run, adaptive clipping."""
    z = fl.calibrate_noise(c.target_epsilon, sampling_rate, c.federated.rounds, delta=c.delta,
                           accountant=c.accountant)  # fmt: skip
    sigma_b = c.federated.clients_per_round / 20 if c.quantile_noise is None else c.quantile_noise
    return fl.DPConfig(
        noise_multiplier=z, clip_norm=c.clip_norm, adaptive=True,
        target_quantile=c.target_quantile, clip_learning_rate=c.clip_learning_rate,
        quantile_noise=sigma_b, delta=c.delta,
    )  # fmt: skip


def groups(c: DpPopulation, count) -> int | tuple[int, ...]:
    """The vmapped groups of a round: size classes fitted to the client sizes, or a count."""
    if not c.size_classes:
        return c.buckets
    f = c.federated
    return fl.size_class_edges(count, f.clients_per_round, c.buckets, epochs=f.local_epochs,
                               batch_size=f.batch_size, sampling=f.sampling)  # fmt: skip


def algorithm(c: DpPopulation, dp: fl.DPConfig | None, buckets) -> fl.FederatedAlgorithm:
    """FedAvg with the run's settings (Poisson sampling); ``dp``: the DP mean as aggregator."""
    execution = fl.Execution(backend="vmap", buckets=buckets,
                             compiler_options=fl.FAST_COMPILE if c.fast_compile else None)  # fmt: skip
    options = {}
    if dp is not None:
        expected = c.federated.clients_per_round
        options["aggregator"] = fl.screen(fl.dp_mean(dp, expected_clients=expected))
    return fl.fedavg(fl.logistic_loss, **c.federated.algorithm_kwargs(), execution=execution,
                     **options)  # fmt: skip


def train(c: DpPopulation, algo, train_data, test_data, key, desc: str) -> dict:
    """Runs the rounds; test accuracy every ``eval_every`` rounds, wall time and the rate of
    the rounds after the first evaluation (compilation excluded)."""
    stamps: list[float] = []

    def evaluate(params):
        out = {"test_accuracy": fl.logistic_evaluate(params, test_data)["accuracy"]}
        stamps.append(time.perf_counter())
        return out

    state = algo.init(fl.logistic_init(), num_clients=train_data.num_clients)
    t0 = time.perf_counter()
    final, hist = fl.run_rounds(algo, state, train_data, key, rounds=c.federated.rounds, evaluate=evaluate,
                            eval_every=c.eval_every, progress=c.progress, desc=desc)  # fmt: skip
    wall = time.perf_counter() - t0
    first = hist[1]["round"] if len(hist) > 2 else 0
    steady = (c.federated.rounds - first) / (stamps[-1] - stamps[1 if first else 0])
    done = hist[1:]
    return {
        "test_accuracy": hist[-1]["test_accuracy"], "wall_s": wall, "rounds_per_s": steady,
        "padding_overhead": float(np.mean([h["lockstep_steps"] / h["local_steps"] for h in done])),
        "clip_norm": hist[-1].get("clip_norm", float("nan")), "history": hist,
        "train_loss": float(fl.logistic_evaluate(final.params, train_data)["loss"]),
    }  # fmt: skip


def overflow_probability(c: DpPopulation) -> float:
    """Probability that a round samples more clients than its Poisson slots hold."""
    slots = poisson_slots(c.federated.clients_per_round)
    q = c.federated.clients_per_round / c.num_clients
    return float(binom.sf(slots, c.num_clients, q)) if slots < c.num_clients else 0.0


def run(cfg: Config, out_dir: pathlib.Path) -> dict:
    c: DpPopulation = cfg.experiment
    fl.check_dp_sampling(c.federated, "experiment.federated")
    train_data, test_data = fl.synthetic_alpha_beta(
        cfg.seed, alpha=c.alpha, beta=c.beta, num_clients=c.num_clients,
        max_samples=c.max_samples, spread=c.spread,
    )  # fmt: skip
    q = fl.sampling_rate(c.federated.clients_per_round, c.num_clients)
    dp = dp_config(c, q)
    key = jax.random.key(cfg.seed)  # both runs: the same sampled clients and local shuffles
    buckets = groups(c, train_data.count)
    private = train(c, algorithm(c, dp, buckets), train_data, test_data, key, "dp-fedavg")
    plain = train(c, algorithm(c, None, buckets), train_data, test_data, key, "fedavg")
    eps = {a: fl.epsilon(dp.noise_multiplier, q, c.federated.rounds, delta=c.delta, accountant=a)
           for a in ("rdp", "pld")}  # fmt: skip
    sizes = np.asarray(train_data.count)
    metrics = {
        "num_clients": c.num_clients, "clients_per_round": c.federated.clients_per_round,
        "sampling_rate": q, "rounds": c.federated.rounds, "delta": c.delta,
        "epsilon_rdp": eps["rdp"], "epsilon_pld": eps["pld"],
        "noise_multiplier": dp.noise_multiplier,
        "update_noise_multiplier": fl.update_noise_multiplier(dp),
        "quantile_noise": dp.quantile_noise, "final_clip_norm": private["clip_norm"],
        "test_accuracy_private": private["test_accuracy"],
        "test_accuracy_nonprivate": plain["test_accuracy"],
        "accuracy_gap_points": 100 * (plain["test_accuracy"] - private["test_accuracy"]),
        "wall_s_private": private["wall_s"], "wall_s_nonprivate": plain["wall_s"],
        "rounds_per_s_private": private["rounds_per_s"],
        "rounds_per_s_nonprivate": plain["rounds_per_s"],
        "padding_overhead": private["padding_overhead"],
        "train_loss_private": private["train_loss"], "train_loss_nonprivate": plain["train_loss"],
        "num_train_samples": int(sizes.sum()), "client_size_median": float(np.median(sizes)),
        "client_size_max": int(sizes.max()),
        "test_accuracy_majority_class": float(np.max(np.bincount(np.asarray(test_data.samples[1])))
                                              / len(test_data.samples[1])),
        "group_edges": list(np.atleast_1d(buckets).tolist()),
        "slot_overflow_probability": overflow_probability(c),
    }  # fmt: skip
    # sweeps: the private model's training loss (a search over settings spends privacy of its
    # own, which this run's epsilon does not count)
    metrics["objective"] = private["train_loss"]
    write_report(out_dir, c, metrics, private["history"], plain["history"])
    return metrics


def plot_accuracy(private: list[dict], plain: list[dict], metrics: dict):
    fig, ax = plt.subplots(figsize=(5.5, 3.6))
    for hist, label in ((plain, "FedAvg (no DP)"),
                        (private, f"DP-FedAvg, epsilon {metrics['epsilon_rdp']:.2f}")):  # fmt: skip
        ax.plot([h["round"] for h in hist], [h["test_accuracy"] for h in hist], label=label)
    ax.set_xlabel("# rounds")
    ax.set_ylabel("test accuracy")
    ax.legend()
    return fig


def write_report(out_dir: pathlib.Path, c: DpPopulation, m: dict, private, plain) -> None:
    f = c.federated
    save_figure(plot_accuracy(private, plain, m), out_dir, "accuracy.png", dpi=120)
    header = ["run", "epsilon (RDP / PLD)", "delta", "noise multiplier", "clients per round",
              "rounds", "test accuracy", "wall time (s)", "rounds/s"]  # fmt: skip
    rows = [
        ["DP-FedAvg", f"{m['epsilon_rdp']:.2f} / {m['epsilon_pld']:.2f}", f"{c.delta:g}",
         f"{m['noise_multiplier']:.3f}", f.clients_per_round, f.rounds,
         f"{100 * m['test_accuracy_private']:.1f}%", f"{m['wall_s_private']:.1f}",
         f"{m['rounds_per_s_private']:.2f}"],
        ["FedAvg", "inf", "", "0", f.clients_per_round, f.rounds,
         f"{100 * m['test_accuracy_nonprivate']:.1f}%", f"{m['wall_s_nonprivate']:.1f}",
         f"{m['rounds_per_s_nonprivate']:.2f}"],
    ]  # fmt: skip
    lines = [
        f"# DP-FedAvg at {c.num_clients:,} clients", "",
        f"Synthetic({c.alpha:g},{c.beta:g}) devices sharing one model (spread {c.spread:g}), "
        f"{m['num_train_samples']:,} training samples (client sizes: median "
        f"{m['client_size_median']:.0f}, max {m['client_size_max']}); Poisson sampling at rate "
        f"{m['sampling_rate']:g} ({f.clients_per_round} clients expected per round), "
        f"{f.local_epochs} local epoch(s) of SGD (lr {f.local_lr:g}, batch "
        f"{f.batch_size}), {f.weighting} weights, multinomial logistic regression.", "",
        f"User-level DP for the whole run: noise multiplier {m['noise_multiplier']:.3f} "
        f"calibrated with dp-accounting ({c.accountant.upper()}) to epsilon "
        f"{c.target_epsilon:g} at delta {c.delta:g}; it is split between the clipped-update "
        f"sum (multiplier {m['update_noise_multiplier']:.3f}) and the adaptive clip norm's "
        f"noisy count (sigma_b {m['quantile_noise']:g}, target quantile {c.target_quantile:g}; "
        f"final clip norm {m['final_clip_norm']:.3f}).", "",
        *table(header, rows), "",
        f"Accuracy gap: {m['accuracy_gap_points']:.1f} points. Rounds/s exclude compilation; "
        f"lockstep local SGD ran {m['padding_overhead']:.2f}x the useful local steps "
        f"({_groups_text(c, m)}). The most frequent test label alone scores "
        f"{100 * m['test_accuracy_majority_class']:.1f}%.", "",
        "The guarantee covers the released model (and the clip norm, a noised statistic); the "
        "round diagnostics (clients per round, local steps, mean update norm) are simulation "
        "output, not released. Poisson sampling fills a fixed number of slots (the mean plus six "
        f"standard deviations); a round with more sampled clients, which would drop the excess, "
        f"has probability {m['slot_overflow_probability']:.1e} (binomial tail).", "",
        "![accuracy](accuracy.png)",
    ]  # fmt: skip
    write_markdown(out_dir, lines)


def _groups_text(c: DpPopulation, m: dict) -> str:
    if c.size_classes:
        return f"{len(m['group_edges']) - 1} size classes, slot edges {m['group_edges']}"
    return f"{c.buckets} groups of geometric widths"
