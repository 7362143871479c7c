"""Federated recurrent twins vs centralized training on the synthetic cohort.

Clients are individuals; their samples are windows of their own training segment. Compared on
each individual's held-out future (test segment NLL, mean over individuals):
centralized SGD on the pooled windows, FedAdam (global twin), FedAdam followed by local
fine-tuning, and FedPer-style personal output heads (client state kept across rounds).
"""

from __future__ import annotations

import pathlib
from dataclasses import dataclass, field

import jax
import jax.numpy as jnp
import matplotlib
from omegaconf import DictConfig

from twinjax import federated as fl
from twinjax.config import experiment_config
from twinjax.data import synthetic_cohort
from twinjax.federated import twins as ft
from twinjax.federated.loop import run_rounds
from twinjax.train.prepare import prepare, twin_spec
from twinjax.twins import init_params

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402


@dataclass
class Config:
    window: int = 48
    stride: int = 12
    rounds: int = 60
    clients_per_round: int = 16
    local_epochs: int = 2
    batch_size: int = 4
    local_lr: float = 0.05
    server_lr: float = 0.01
    central_epochs: int = 10
    fine_tune_epochs: int = 2
    progress: bool = True
    fast_compile: bool = False
    # multi-host launch: jax.distributed.initialize (see twinjax.federated.execution)
    distributed: fl.DistributedConfig = field(default_factory=fl.DistributedConfig)


def _pooled(data: fl.ClientData) -> fl.ClientData:
    """All clients' samples as one client (centralized training)."""
    return data._replace(offset=jnp.zeros(1, jnp.int32), count=jnp.sum(data.count)[None])


def run(cfg: DictConfig, out_dir: pathlib.Path) -> dict:
    c = experiment_config(Config, cfg.experiment)
    fl.initialize_distributed(c.distributed)  # before any JAX computation
    key = jax.random.key(cfg.seed)
    k_data, k_init, k_fed, k_per, k_central, k_tune = jax.random.split(key, 6)
    d = cfg.data
    cohort = synthetic_cohort(k_data, n_individuals=d.n_individuals, n_steps=d.n_steps)
    arrays, _ = prepare(cohort, d)
    spec = twin_spec(cohort, cfg.model)
    data = ft.window_client_data(arrays, length=c.window, stride=c.stride)
    loss = ft.twin_loss(spec)
    params0 = init_params(k_init, spec)
    opts = fl.FAST_COMPILE if c.fast_compile else None
    test = lambda p: {"test_nll": jnp.mean(ft.test_nll(p, spec, arrays))}
    common = dict(
        clients_per_round=min(c.clients_per_round, data.num_clients), local_lr=c.local_lr,
        batch_size=c.batch_size, local_epochs=c.local_epochs, weighting="samples",
    )  # fmt: skip
    results, curves = {}, {}

    fed = fl.fedadam(loss, server_lr=c.server_lr, **common)
    algo = fl.build(fed, compiler_options=opts)
    state, hist = run_rounds(
        algo, algo.init(params0, num_clients=data.num_clients), data, k_fed, rounds=c.rounds,
        evaluate=test, progress=c.progress, desc="fedadam twins",
    )  # fmt: skip
    results["federated_global"] = hist[-1]["test_nll"]
    curves["federated (FedAdam)"] = hist
    tuned = fl.fine_tune(loss, state.params, data, k_tune, epochs=c.fine_tune_epochs,
                         learning_rate=c.local_lr, batch_size=c.batch_size)  # fmt: skip
    results["federated_fine_tuned"] = float(
        jnp.mean(ft.test_nll(tuned, spec, arrays, personal=True))
    )

    personal = fl.PersonalConfig("fedper", head=ft.head_mask(params0))
    fed_p = fl.fedadam(loss, server_lr=c.server_lr, personal=personal, **common)
    algo_p = fl.build(fed_p, compiler_options=opts)
    state_p, hist_p = run_rounds(
        algo_p, algo_p.init(params0, num_clients=data.num_clients), data, k_per,
        rounds=c.rounds, evaluate=test, progress=c.progress, desc="fedper twins",
    )  # fmt: skip
    own = fl.personal_params(personal, state_p.params, state_p.client_states)
    results["federated_personal_heads"] = float(
        jnp.mean(ft.test_nll(own, spec, arrays, personal=True))
    )

    pooled = _pooled(data)
    central = fl.local_sgd(
        loss, params0, pooled.samples, pooled.offset[0], pooled.count[0],
        jnp.int32(c.central_epochs), k_central, learning_rate=c.local_lr,
        batch_size=c.batch_size, max_epochs=c.central_epochs,
    ).params  # fmt: skip
    results["centralized"] = float(test(central)["test_nll"])
    results["initial"] = float(test(params0)["test_nll"])

    _plot(curves | {"federated + personal heads (global part)": hist_p}, results, out_dir)
    metrics = {f"test_nll_{k}": float(v) for k, v in results.items()}
    metrics.update(num_clients=data.num_clients, num_windows=int(data.count.sum()))
    (out_dir / "report.md").write_text(_report(c, metrics))
    return metrics


def _plot(curves: dict, results: dict, out_dir: pathlib.Path) -> None:
    fig, ax = plt.subplots(figsize=(6, 4))
    for name, hist in curves.items():
        ax.plot([h["round"] for h in hist], [h["test_nll"] for h in hist], label=name)
    finals = ("centralized", "federated_fine_tuned", "federated_personal_heads")
    for name, color in zip(finals, ("C2", "C3", "C4"), strict=True):
        ax.axhline(results[name], ls="--", lw=1, label=f"{name} (final)", color=color)
    ax.set_xlabel("round")
    ax.set_ylabel("test NLL (mean over individuals)")
    ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(out_dir / "test_nll.png", dpi=120)
    plt.close(fig)


def _report(c: Config, m: dict) -> str:
    rows = [
        ("initial twin", "test_nll_initial"),
        (f"centralized SGD, {c.central_epochs} epochs on pooled windows", "test_nll_centralized"),
        (f"federated FedAdam, {c.rounds} rounds", "test_nll_federated_global"),
        (f"+ local fine-tuning ({c.fine_tune_epochs} epochs)", "test_nll_federated_fine_tuned"),
        ("federated, personal output heads (FedPer)", "test_nll_federated_personal_heads"),
    ]
    lines = [
        "# Federated recurrent twins vs centralized", "",
        f"{m['num_clients']} individuals = clients, {m['num_windows']} training windows of "
        f"{c.window} steps; {c.clients_per_round} clients per round, {c.local_epochs} local "
        f"epochs, batch {c.batch_size}, local lr {c.local_lr}, server Adam lr {c.server_lr}.", "",
        "![test NLL](test_nll.png)", "",
        "| model | test NLL (mean over individuals) |", "|---|---|",
    ]  # fmt: skip
    lines += [f"| {name} | {m[k]:.3f} |" for name, k in rows]
    return "\n".join(lines) + "\n"
