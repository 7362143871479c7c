"""Each ABM experiment runs through Hydra with tiny overrides and writes metrics, report, plots.

(``python -m twinjax experiment=abm_epidemic`` itself is the same dispatch: ``run_experiment``.)"""

import json
from pathlib import Path

import pytest
from hydra import compose, initialize_config_dir

from twinjax.__main__ import run_experiment

ROOT = Path(__file__).resolve().parents[2]


def _run(tmp_path: Path, name: str, *overrides: str) -> dict:
    """Composes the Hydra config as ``python -m twinjax experiment=NAME ...`` does and runs it
    in-process (one JAX start for all experiment tests)."""
    with initialize_config_dir(config_dir=str(ROOT / "configs"), version_base="1.3"):
        cfg = compose("config", overrides=[f"experiment={name}", *overrides])
    run_experiment(cfg, tmp_path)
    report = (tmp_path / "report.md").read_text()
    for line in report.splitlines():
        if line.startswith("!["):
            assert (tmp_path / line[line.index("(") + 1 : -1]).stat().st_size > 1000
    return json.loads((tmp_path / "metrics.json").read_text()), report


def test_abm_epidemic_tiny(tmp_path):
    metrics, report = _run(
        tmp_path, "abm_epidemic", "experiment.n_agents=1500", "experiment.n_steps=30",
        "experiment.n_seeds=3", "experiment.calibrate=false", "experiment.twin_n_agents=32",
        "experiment.twin_window=16", "experiment.twin_fit_steps=5", "experiment.twin_n_steps=10",
    )  # fmt: skip
    # (calibration itself is tested in test_abm_calibration.py; NUTS compilation is too slow here)
    sc = metrics["scenarios"]
    assert set(sc) == {"baseline", "vaccination", "distancing", "test_isolate"}
    for name in ("vaccination", "distancing", "test_isolate"):
        assert sc[name]["attack_rate_mean"] < sc["baseline"]["attack_rate_mean"]
    b = sc["baseline"]
    assert b["attack_rate_q05"] <= b["attack_rate_mean"] <= b["attack_rate_q95"]
    assert "0-17" in report and "| vaccination |" in report
    tw = metrics["twin_driven"]
    assert tw["rel_sus_sd_step0"] > 0 and 0 < tw["attack_rate_coupled_mean"] <= 1
    assert "Twin-driven agents" in report


@pytest.mark.parametrize(
    "name,overrides",
    [
        (
            "abm_commuting",
            ["experiment.n_agents=800", "experiment.n_days=6", "experiment.n_seeds=2"],
        ),
        (
            "abm_finance",
            ["experiment.n_agents=800", "experiment.n_months=12", "experiment.n_seeds=2"],
        ),
    ],
)
def test_abm_scenarios_tiny(tmp_path, name, overrides):
    metrics, report = _run(tmp_path, name, *overrides)
    sc = metrics["scenarios"]
    assert set(sc) == {"baseline", "transit_x2", "congestion_price", "both"} or set(sc) == {
        "baseline", "auto_save", "commitment", "both"}  # fmt: skip
    assert "| baseline |" in report
    if name == "abm_commuting":  # more frequent transit raises its share; a car price lowers car's
        assert sc["transit_x2"]["share_transit_mean"] > sc["baseline"]["share_transit_mean"]
        assert sc["congestion_price"]["share_car_mean"] < sc["baseline"]["share_car_mean"]
    else:  # automatic saving leaves more net worth in every income group
        for g in ("low", "middle", "high"):
            key = f"net_worth_months_{g}_median"
            assert sc["auto_save"][key] > sc["baseline"][key]
