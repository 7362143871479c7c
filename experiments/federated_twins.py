"""Federated recurrent twins vs centralized training on the synthetic cohort.

Clients are individuals; their samples are windows of their own training segment. Compared on
each individual's held-out future (test segment NLL, mean over individuals):
centralized SGD on the pooled windows, FedAdam (global twin), FedAdam followed by local
fine-tuning, and FedPer-style personal output heads (client state kept across rounds).
"""

from __future__ import annotations

import pathlib

import jax
import jax.numpy as jnp
import matplotlib.pyplot as plt

from twinjax import federated as fl
from twinjax.adapters import federated_twins as ft
from twinjax.config import Config
from twinjax.data import synthetic_cohort
from twinjax.federated.loop import run_rounds
from twinjax.pipeline import prepare_cohort, twin_spec
from twinjax.twins import init_params
from twinjax_experiments.config import FederatedTwins
from twinjax_experiments.report import save_figure, table, write_markdown


def _pooled(data: fl.ClientData) -> fl.ClientData:
    """All clients' samples as one client (centralized training)."""
    return data._replace(offset=jnp.zeros(1, jnp.int32), count=jnp.sum(data.count)[None])


def run(cfg: Config, out_dir: pathlib.Path) -> dict:
    c: FederatedTwins = cfg.experiment
    key = jax.random.key(cfg.seed)
    k_data, k_init, k_fed, k_per, k_central, k_tune = jax.random.split(key, 6)
    d = cfg.data
    cohort = synthetic_cohort(k_data, n_individuals=d.n_individuals, n_steps=d.n_steps)
    arrays, _ = prepare_cohort(cohort, d)
    spec = twin_spec(cohort, cfg.model)
    data = ft.window_client_data(arrays, length=c.window, stride=c.stride)
    loss = ft.twin_loss(spec)
    params0 = init_params(k_init, spec)
    opts = fl.FAST_COMPILE if c.fast_compile else None
    test = lambda p: {"test_nll": jnp.mean(ft.test_nll(p, spec, arrays))}
    f = c.federated
    common = {
        **f.algorithm_kwargs(), "clients_per_round": min(f.clients_per_round, data.num_clients),
        "execution": fl.Execution(compiler_options=opts),
    }  # fmt: skip
    results, curves = {}, {}

    algo = fl.fedadam(loss, server_lr=c.server_lr, **common)
    state, hist = run_rounds(
        algo, algo.init(params0, num_clients=data.num_clients), data, k_fed, rounds=f.rounds,
        evaluate=test, progress=c.progress, desc="fedadam twins",
    )  # fmt: skip
    results["federated_global"] = hist[-1]["test_nll"]
    curves["federated (FedAdam)"] = hist
    tuned = fl.fine_tune(loss, state.params, data, k_tune, epochs=c.fine_tune_epochs,
                         learning_rate=f.local_lr, batch_size=f.batch_size)  # fmt: skip
    results["federated_fine_tuned"] = float(
        jnp.mean(ft.test_nll(tuned, spec, arrays, personal=True))
    )

    personal = fl.PersonalConfig("fedper", head=ft.head_mask(params0))
    algo_p = fl.fedadam(loss, server_lr=c.server_lr, personal=personal, **common)
    state_p, hist_p = run_rounds(
        algo_p, algo_p.init(params0, num_clients=data.num_clients), data, k_per,
        rounds=f.rounds, evaluate=test, progress=c.progress, desc="fedper twins",
    )  # fmt: skip
    own = fl.personal_params(personal, state_p.params, state_p.clients.clients)
    results["federated_personal_heads"] = float(
        jnp.mean(ft.test_nll(own, spec, arrays, personal=True))
    )

    results["centralized"] = float(
        test(_centralized(loss, params0, data, k_central, c))["test_nll"]
    )
    results["initial"] = float(test(params0)["test_nll"])

    metrics = {f"test_nll_{k}": float(v) for k, v in results.items()}
    metrics.update(num_clients=data.num_clients, num_windows=int(data.count.sum()))
    # sweeps: the personal-heads twins' NLL on the validation periods (test_nll masks to val)
    metrics["objective"] = float(
        jnp.mean(ft.test_nll(own, spec, arrays._replace(test=arrays.val), personal=True))
    )
    curves["federated + personal heads (global part)"] = hist_p
    write_report(out_dir, c, metrics, curves)
    return metrics


def _centralized(loss, params0, data, key, c: FederatedTwins):
    """The baseline federated learning stands in for: one model trained on every client's
    windows pooled in one place."""
    pooled = _pooled(data)
    return fl.local_sgd(
        loss, params0, pooled.samples, pooled.offset[0], pooled.count[0],
        jnp.int32(c.central_epochs), key, learning_rate=c.federated.local_lr,
        batch_size=c.federated.batch_size, max_epochs=c.central_epochs,
    ).params  # fmt: skip


def write_report(out_dir: pathlib.Path, c: FederatedTwins, m: dict, curves: dict) -> None:
    """test_nll.png (test NLL per round, final NLLs dashed) and report.md."""
    fig, ax = plt.subplots(figsize=(6, 4))
    for name, hist in curves.items():
        ax.plot([h["round"] for h in hist], [h["test_nll"] for h in hist], label=name)
    finals = ("centralized", "federated_fine_tuned", "federated_personal_heads")
    for name, color in zip(finals, ("C2", "C3", "C4"), strict=True):
        ax.axhline(m[f"test_nll_{name}"], ls="--", lw=1, label=f"{name} (final)", color=color)
    ax.set_xlabel("round")
    ax.set_ylabel("test NLL (mean over individuals)")
    ax.legend(fontsize=7)
    figure = save_figure(fig, out_dir, "test_nll.png", dpi=120)
    rows = [
        ("initial twin", "initial"),
        (f"centralized SGD, {c.central_epochs} epochs on pooled windows", "centralized"),
        (f"federated FedAdam, {c.federated.rounds} rounds", "federated_global"),
        (f"+ local fine-tuning ({c.fine_tune_epochs} epochs)", "federated_fine_tuned"),
        ("federated, personal output heads (FedPer)", "federated_personal_heads"),
    ]
    f = c.federated
    write_markdown(out_dir, [
        "# Federated recurrent twins vs centralized", "",
        f"{m['num_clients']} individuals = clients, {m['num_windows']} training windows of "
        f"{c.window} steps; {f.clients_per_round} clients per round ({f.sampling} sampling, "
        f"{f.weighting} weights), {f.local_epochs} local epochs, batch {f.batch_size}, local lr "
        f"{f.local_lr}, server Adam lr {c.server_lr}.", "",
        f"![test NLL]({figure})", "",
        *table(["model", "test NLL (mean over individuals)"],
               [[name, f"{m[f'test_nll_{k}']:.3f}"] for name, k in rows]),
    ])  # fmt: skip
