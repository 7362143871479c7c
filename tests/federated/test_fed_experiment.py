"""The fedprox_synthetic experiment runs through Hydra with tiny overrides."""

import dp_accounting
import pytest


def test_fedprox_synthetic_tiny(tmp_path, run_app):
    overrides = [
        "experiment=fedprox_synthetic", "experiment.rounds=4",
        "experiment.num_clients=8", "experiment.clients_per_round=4", "experiment.local_epochs=2",
        "experiment.max_samples=60", "experiment.seeds=2", "experiment.straggler_fractions=[0.5]",
        "experiment.byzantine_rounds=3", "experiment.byzantine_fraction=0.5",
        "experiment.byzantine_num_clients=8", "experiment.byzantine_clients_per_round=6",
        "experiment.byzantine_attacks=[sign_flip]",
        "experiment.byzantine_aggregators=[median]", "experiment.dp_rounds=3",
        "experiment.dp_clients_per_round=3", "experiment.dp_noise_multiplier=1.3",
        "experiment.progress=false", "experiment.fast_compile=true",
    ]  # fmt: skip
    metrics = run_app(tmp_path, *overrides)
    for name in ("fedavg", "fedprox_mu0", "fedprox_mu1"):
        acc = metrics[f"test_accuracy_stragglers50_{name}_mean"]
        assert 0.0 <= acc <= 1.0
        assert metrics[f"train_loss_stragglers50_{name}_mean"] < 2.31  # below log(10) at init
    assert 0 <= metrics["test_accuracy_last10_stragglers50_fedavg_mean"] <= 1
    gain = metrics["fedprox_mu1_minus_fedavg_points_at_stragglers50"]
    want = 100 * (
        metrics["test_accuracy_stragglers50_fedprox_mu1_mean"]
        - metrics["test_accuracy_stragglers50_fedavg_mean"]
    )
    assert gain == pytest.approx(want)
    # NaN updates from the Byzantine clients (ids 0-3 of 8) are rejected, never aggregated
    assert metrics["byzantine_nan_rejected_updates"] >= 1
    assert metrics["byzantine_nan_mean_test_accuracy"] > 0.0
    # drops are reported against clean FedAvg and against the same aggregator run clean
    flip = metrics["byzantine_sign_flip_median_test_accuracy"]
    for ref, clean in (("fedavg", "mean"), ("same_aggregator", "median")):
        drop = metrics[f"byzantine_sign_flip_median_drop_points_vs_clean_{ref}"]
        assert drop == pytest.approx(
            100 * (metrics[f"byzantine_clean_{clean}_test_accuracy"] - flip)
        )
    # the reported epsilon is dp_accounting's for the same z, sampling rate and rounds
    q = metrics["dp_sampling_rate"]
    assert q == pytest.approx(3 / 8)
    event = dp_accounting.SelfComposedDpEvent(
        dp_accounting.PoissonSampledDpEvent(q, dp_accounting.GaussianDpEvent(1.3)), 3
    )
    for name, acc in (("rdp", dp_accounting.rdp.RdpAccountant()),
                      ("pld", dp_accounting.pld.PLDAccountant())):  # fmt: skip
        want = acc.compose(event).get_epsilon(1e-5)
        assert metrics[f"dp_epsilon_{name}"] == pytest.approx(want, rel=1e-9)
    report = (tmp_path / "report.md").read_text()
    assert "figure1.png" in report and "DP-FedAvg" in report and "| 50% | fedavg |" in report
    assert "| clean | median |" in report and "| sign_flip | median |" in report
    assert metrics["byzantine_num_clients"] == 8 and "byzantine.png" in report
    for fig in ("figure1.png", "byzantine.png"):
        assert (tmp_path / fig).stat().st_size > 10_000


def test_federated_twins_tiny(tmp_path, run_app):
    overrides = [
        "experiment=federated_twins", "data.n_individuals=6",
        "data.n_steps=64", "model.hidden=4", "model.attention=false", "experiment.window=16",
        "experiment.stride=16", "experiment.rounds=2", "experiment.clients_per_round=3",
        "experiment.local_epochs=1", "experiment.central_epochs=1",
        "experiment.fine_tune_epochs=1", "experiment.progress=false",
        "experiment.fast_compile=true",
    ]  # fmt: skip
    m = run_app(tmp_path, *overrides)
    assert m["num_clients"] == 6
    for k in (
        "centralized",
        "federated_global",
        "federated_fine_tuned",
        "federated_personal_heads",
    ):
        assert m[f"test_nll_{k}"] < m["test_nll_initial"]  # every variant learned something
    report = (tmp_path / "report.md").read_text()
    assert "personal output heads" in report and "test_nll.png" in report
    assert (tmp_path / "test_nll.png").stat().st_size > 10_000
