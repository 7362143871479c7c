"""The Flower adapter: twinjax algorithms run as a Flower ClientApp + ServerApp give the global
model (and client states) of twinjax's own rounds.

Tolerance 1e-5: the two paths run the same operations in the same order on the same keys, the
Flower clients jitted one at a time and the reference serial (no jit) or vmapped, so only float
rounding of a few local SGD steps and one aggregation differs (observed ~1e-7).
"""

import dataclasses
import functools

import jax
import numpy as np
import optax
import pytest

from twinjax import federated as fl

pytest.importorskip("flwr")
from twinjax.integrations import flower  # noqa: E402

NUM_CLIENTS, SEED = 5, 0


def _data():
    data, _ = fl.synthetic_alpha_beta(0, num_clients=NUM_CLIENTS, dim=3, num_classes=2,
                                      max_samples=20)  # fmt: skip
    return data


def load_client(cid: int):
    """Client ``cid``'s own samples (all a Flower client ever sees)."""
    data = _data()
    o, n = int(data.offset[cid]), int(data.count[cid])
    return jax.tree.map(lambda a: a[o : o + n], data.samples)


def make_fedadam(backend: str = "serial"):
    """FedAdam, clients sampled proportionally to their size, sample-weighted mean."""
    client = fl.sgd_update(fl.logistic_loss, learning_rate=0.1, batch_size=10, epochs=1)
    algo = fl.federated_averaging(
        client, clients_per_round=3, local_epochs=1, server_optimizer=optax.adam(0.05),
        sampling="size", execution=fl.Execution(backend=backend),
    )  # fmt: skip
    return algo, fl.logistic_init(3, 2)


def make_scaffold_secure(backend: str = "vmap"):
    """SCAFFOLD (client state kept across rounds) with secure aggregation (clients mask their
    updates) and dropouts (masks left dangling are removed), Poisson sampling."""
    client = fl.scaffold_update(fl.logistic_loss, learning_rate=0.1, batch_size=4, epochs=2)
    algo = fl.federated_averaging(
        client, clients_per_round=3, local_epochs=2, aggregator=fl.secure_mean(),
        sampling="poisson", simulation=fl.Simulation(dropout_prob=0.3),
        execution=fl.Execution(backend=backend),
    )  # fmt: skip
    return algo, fl.logistic_init(3, 2)


def make_dp_robust(backend: str = "vmap"):
    """DP-FedAvg with adaptive clipping (aggregator state) after stragglers are dropped, and
    FedProx with Byzantine clients under the coordinate median (two pieces of server logic)."""
    client = fl.sgd_update(fl.logistic_loss, learning_rate=0.1, batch_size=4, epochs=2, mu=0.1)
    dp = fl.DPConfig(noise_multiplier=0.5, clip_norm=0.5, adaptive=True)
    algo = fl.federated_averaging(
        client, clients_per_round=4, local_epochs=2, weighting="uniform",
        aggregator=fl.dp_mean(dp, expected_clients=4), drop_stragglers=False,
        simulation=fl.Simulation(straggler_fraction=0.5), execution=fl.Execution(backend=backend),
    )  # fmt: skip
    return algo, fl.logistic_init(3, 2)


def _twinjax(make, rounds: int, backend: str) -> fl.ServerState:
    algo, params = make(backend)
    data = _data()
    state = algo.init(params, num_clients=data.num_clients)
    state, _ = fl.run_rounds(algo, state, data, jax.random.key(SEED), rounds=rounds,
                             progress=False)  # fmt: skip
    return state


def _flower(make, rounds: int, ray: bool = False, secaggplus: bool = False) -> flower.ServerRun:
    runs = []
    build = flower.secaggplus_server_app if secaggplus else flower.server_app
    server = build(make, num_clients=NUM_CLIENTS, rounds=rounds, seed=SEED, done=runs.append)
    client = flower.client_app(make, load_client, secaggplus=secaggplus)
    if ray:
        from flwr.simulation import run_simulation

        run_simulation(server_app=server, client_app=client, num_supernodes=NUM_CLIENTS,
                       backend_config={"client_resources": {"num_cpus": 1}})  # fmt: skip
    else:
        flower.run_local(server, client, num_clients=NUM_CLIENTS)
    assert len(runs) == 1, "the ServerApp did not finish"
    return runs[0]


def _assert_same(got: fl.ServerState, ref: fl.ServerState) -> None:
    assert int(got.round) == int(ref.round)
    for tree in ("params", "clients", "aggregator"):
        a, b = getattr(got, tree), getattr(ref, tree)
        for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(b), strict=True):
            np.testing.assert_allclose(x, y, atol=1e-5, err_msg=tree)


@pytest.mark.integration
def test_flower_matches_serial_backend():
    """Size sampling and sample weights depend on the counts the clients report."""
    rounds = 2
    run = _flower(make_fedadam, rounds)
    _assert_same(run.state, _twinjax(make_fedadam, rounds, "serial"))
    assert len(run.history) == rounds and all(h["clients_live"] == 3 for h in run.history)
    assert sorted(run.nodes) == list(range(NUM_CLIENTS))


@pytest.mark.integration
def test_flower_client_state_secure_aggregation_and_dropouts():
    rounds = 3
    run = _flower(make_scaffold_secure, rounds)
    ref = _twinjax(make_scaffold_secure, rounds, "vmap")
    _assert_same(run.state, ref)
    # the check can fail: SCAFFOLD's control variates moved, some sampled clients dropped out
    assert float(np.abs(np.asarray(ref.clients.shared["control"]["w"])).max()) > 0


@pytest.mark.slow
def test_flower_dp_and_stragglers():
    rounds = 3
    run = _flower(make_dp_robust, rounds)
    _assert_same(run.state, _twinjax(make_dp_robust, rounds, "vmap"))
    assert float(run.state.aggregator.clip_norm) != 0.5  # adapted


@pytest.mark.slow
def test_ray_simulation_matches_serial_backend():
    """Flower's simulation engine (Ray workers) with the same apps."""
    rounds = 3
    run = _flower(make_fedadam, rounds, ray=True)
    _assert_same(run.state, _twinjax(make_fedadam, rounds, "serial"))


@functools.cache
def _twins():
    """experiment=federated_twins at the sizes of its tiny CI run: the same cohort, windows,
    twin, loss, initial parameters and FedAdam as ``experiments/federated_twins.py``."""
    from twinjax.adapters import federated_twins as ft
    from twinjax.config import DataConfig, ModelConfig
    from twinjax.data import synthetic_cohort
    from twinjax.pipeline import prepare_cohort, twin_spec
    from twinjax.twins import init_params
    from twinjax_experiments.config import FederatedTwins

    f = dataclasses.replace(FederatedTwins().federated, rounds=2, clients_per_round=3,
                            local_epochs=1)  # fmt: skip
    c = FederatedTwins(window=16, stride=16, federated=f, progress=False, fast_compile=True)
    d, m = DataConfig(n_individuals=6, n_steps=64), ModelConfig(hidden=4, attention=False)
    k_data, k_init, k_fed, *_ = jax.random.split(jax.random.key(0), 6)
    cohort = synthetic_cohort(k_data, n_individuals=d.n_individuals, n_steps=d.n_steps)
    arrays, _ = prepare_cohort(cohort, d)
    spec = twin_spec(cohort, m)
    data = ft.window_client_data(arrays, length=c.window, stride=c.stride)
    algo = fl.fedadam(
        ft.twin_loss(spec), server_lr=c.server_lr, **f.algorithm_kwargs(),
        execution=fl.Execution(compiler_options=fl.FAST_COMPILE),
    )  # fmt: skip
    return algo, init_params(k_init, spec), data, k_fed, f.rounds


def make_twins():
    algo, params, *_ = _twins()
    return algo, params


def load_twin_client(cid: int):
    data = _twins()[2]
    o, n = int(data.offset[cid]), int(data.count[cid])
    return jax.tree.map(lambda a: a[o : o + n], data.samples)


@pytest.mark.slow
def test_federated_twins_on_flower_simulation():
    """Two FedAdam rounds of federated twins through Flower's simulation engine (Ray) equal the
    experiment's own rounds (its vmapped backend)."""
    from flwr.simulation import run_simulation

    algo, params, data, key, rounds = _twins()
    runs = []
    server = flower.server_app(make_twins, num_clients=data.num_clients, rounds=rounds, key=key,
                               done=runs.append)  # fmt: skip
    client = flower.client_app(make_twins, load_twin_client)
    run_simulation(server_app=server, client_app=client, num_supernodes=data.num_clients,
                   backend_config={"client_resources": {"num_cpus": 1}})  # fmt: skip
    assert len(runs) == 1, "the ServerApp did not finish"
    state, _ = fl.run_rounds(algo, algo.init(params, num_clients=data.num_clients), data, key,
                             rounds=rounds, progress=False)  # fmt: skip
    _assert_same(runs[0].state, state)
    moved = jax.tree.map(lambda a, b: float(np.abs(a - b).max()), state.params, params)
    assert max(jax.tree.leaves(moved)) > 1e-4  # the rounds changed the twin


def test_refuses_what_it_cannot_run():
    algo, params = make_fedadam()
    with pytest.raises(ValueError, match="no parts"):
        flower.strategy(lambda: (fl.FederatedAlgorithm(algo.init, algo.apply), params),
                        num_clients=NUM_CLIENTS)  # fmt: skip
    arrays = flower.to_arrays(params)
    assert jax.tree.all(jax.tree.map(np.array_equal, flower.from_arrays(arrays, params), params))
    with pytest.raises(ValueError, match="expected 2 arrays, received 1"):
        flower.from_arrays({"0": arrays["0"]}, params)


def _readme_block(text: str, first_line: str) -> str:
    start = text.index(first_line)
    return text[start : text.index("```", start)]


def _stop_local_superlink(home) -> None:
    """``flwr run`` on the local connection starts a detached SuperLink (kept for later runs,
    its log under ``FLWR_HOME``); the one this test started is stopped (its workers follow)."""
    import os
    import signal
    from pathlib import Path

    for cmdline in Path("/proc").glob("[0-9]*/cmdline"):
        try:
            args = cmdline.read_bytes().decode(errors="replace")
        except OSError:
            continue
        if "flower-superlink" in args and str(home) in args:
            os.kill(int(cmdline.parent.name), signal.SIGTERM)


@pytest.mark.slow
def test_readme_flower_app_runs_with_flwr_run(tmp_path):
    """The README's app folder, as written, under ``flwr run`` (the local simulation
    connection; port 39091 must be free), gives the parameters of twinjax's own rounds."""
    import ast
    import os
    import subprocess
    import sys
    from pathlib import Path

    readme = (Path(__file__).parents[2] / "README.md").read_text()
    app = tmp_path / "my_fed_app"
    app.mkdir()
    (app / "pyproject.toml").write_text(_readme_block(readme, "# my_fed_app/pyproject.toml"))
    (app / "fed_app.py").write_text(_readme_block(readme, "# my_fed_app/fed_app.py"))
    home = tmp_path / "flwr-home"
    home.mkdir()
    (home / "config.toml").write_text(
        '[superlink]\ndefault = "local"\n\n[superlink.local]\naddress = ":local:"\n'
        "options.num-supernodes = 2\n"
    )
    bin_dir = str(Path(sys.executable).parent)
    env = {**os.environ, "FLWR_HOME": str(home), "XLA_FLAGS": "",
           "PATH": bin_dir + os.pathsep + os.environ["PATH"]}  # fmt: skip
    try:
        proc = subprocess.run([str(Path(bin_dir) / "flwr"), "run", str(app), "--stream"],
                              env=env, capture_output=True, text=True, timeout=900)  # fmt: skip
    finally:
        _stop_local_superlink(home)
    lines = [ln for ln in proc.stdout.splitlines() if ln.startswith("final params:")]
    assert proc.returncode == 0 and lines, proc.stdout[-3000:] + proc.stderr[-3000:]
    got = {k: np.asarray(v) for k, v in ast.literal_eval(lines[-1].split(":", 1)[1]).items()}

    sys.path.insert(0, str(app))
    try:
        import fed_app
    finally:
        sys.path.remove(str(app))
    algo, params = fed_app.make()
    data, _ = fl.synthetic_alpha_beta(0, num_clients=2, dim=3, num_classes=2, max_samples=20)
    state, _ = fl.run_rounds(algo, algo.init(params, num_clients=2), data, jax.random.key(0),
                             rounds=3, progress=False)  # fmt: skip
    for a, b in zip(jax.tree.leaves(got), jax.tree.leaves(jax.tree.map(np.asarray, state.params)),
                    strict=True):  # fmt: skip
        np.testing.assert_allclose(a, b, atol=1e-5)


def make_fedavg(backend: str = "vmap"):
    """FedAvg (stateless clients, the weighted mean): what Flower's SecAgg+ can aggregate."""
    client = fl.sgd_update(fl.logistic_loss, learning_rate=0.1, batch_size=4, epochs=2)
    algo = fl.federated_averaging(client, clients_per_round=3, local_epochs=2,
                                  execution=fl.Execution(backend=backend))  # fmt: skip
    return algo, fl.logistic_init(3, 2)


@pytest.mark.integration
def test_secaggplus_matches_twinjax():
    """Through Flower's SecAgg+ (the server sums masked, quantized updates) the model equals
    twinjax's rounds up to SecAgg+'s quantization: updates clipped to 1 on 2^22 levels, a step
    of 4.8e-7 a client (observed: 2e-7 after 2 rounds)."""
    _assert_secaggplus(_flower(make_fedavg, 2, secaggplus=True), _twinjax(make_fedavg, 2, "vmap"))


def _assert_secaggplus(run: flower.ServerRun, ref: fl.ServerState) -> None:
    assert int(run.state.round) == int(ref.round)
    for a, b in zip(jax.tree.leaves(run.state.params), jax.tree.leaves(ref.params), strict=True):
        np.testing.assert_allclose(a, b, atol=1e-5)


@pytest.mark.slow
def test_secaggplus_on_ray_simulation():
    """SecAgg+ keeps its per-node protocol state in the node's context: the simulation engine's
    contexts carry it between the protocol's stages."""
    ref = _twinjax(make_fedavg, 2, "vmap")
    _assert_secaggplus(_flower(make_fedavg, 2, ray=True, secaggplus=True), ref)


def test_the_old_flower_path_is_a_deprecated_alias(monkeypatch):
    """``twinjax.adapters.flower`` warns and hands out the integration's own objects."""
    import importlib
    import sys

    monkeypatch.delitem(sys.modules, "twinjax.adapters.flower", raising=False)
    with pytest.warns(DeprecationWarning, match="twinjax.integrations.flower"):
        alias = importlib.import_module("twinjax.adapters.flower")
    for name in alias.__all__:
        assert getattr(alias, name) is getattr(flower, name), name
