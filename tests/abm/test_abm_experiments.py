"""Each ABM experiment runs through Hydra with tiny overrides and writes metrics, report, plots."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def _run(tmp_path: Path, name: str, *overrides: str) -> dict:
    env = dict(os.environ, XLA_FLAGS="", JAX_PLATFORMS="cpu", MPLBACKEND="Agg")
    cmd = [sys.executable, "-m", "twinjax", f"experiment={name}", f"hydra.run.dir={tmp_path}"]
    subprocess.run(cmd + list(overrides), cwd=ROOT, env=env, check=True, capture_output=True)
    report = (tmp_path / "report.md").read_text()
    for line in report.splitlines():
        if line.startswith("!["):
            assert (tmp_path / line[line.index("(") + 1 : -1]).stat().st_size > 1000
    return json.loads((tmp_path / "metrics.json").read_text()), report


def test_abm_epidemic_tiny(tmp_path):
    metrics, report = _run(
        tmp_path, "abm_epidemic", "experiment.n_agents=1500", "experiment.n_steps=50",
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
    if not (ROOT / "experiments" / f"{name}.py").exists():
        pytest.skip(f"{name} not written yet")
    metrics, report = _run(tmp_path, name, *overrides)
    assert "baseline" in metrics["scenarios"] and len(metrics["scenarios"]) >= 3
    assert "| baseline |" in report
