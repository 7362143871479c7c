"""scripts/gpu_check.sh --dry-run: every sub-run of the GPU check works at tiny sizes on the CPU.

Marked slow: the dry run starts six Python processes (JAX, Hydra, the benches), which alone take
longer than a unit test may on the CI's two cores; its own work is a few seconds.
"""

import os
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
CHECKS = ("twins", "main", "abm", "agents", "federated", "processes", "lstm_xla", "lstm_pallas")


@pytest.mark.slow
def test_dry_run_prints_one_ok_row_per_check(tmp_path):
    env = {**os.environ, "XLA_FLAGS": "", "JAX_PLATFORMS": "cpu", "MPLBACKEND": "Agg"}
    proc = subprocess.run(
        ["bash", "scripts/gpu_check.sh", "--dry-run", "--out", str(tmp_path)],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=3000,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-3000:]
    lines = proc.stdout.strip().splitlines()
    assert lines[0].split()[:4] == ["check", "size", "status", "seconds"]
    rows = [line.split(maxsplit=4) for line in lines[1:]]
    assert [r[0] for r in rows] == list(CHECKS), proc.stdout
    bad = [line for line, r in zip(lines[1:], rows, strict=True) if r[2] != "ok"]
    assert not bad, "\n".join(bad) + "\n" + proc.stderr[-3000:]
    main = dict(zip(CHECKS, rows, strict=True))["main"][4]
    for phase in ("data", "population fit", "personal fit", "evaluation", "report", "save"):
        assert f"{phase} " in main, main
    assert (tmp_path / "table.txt").read_text() == proc.stdout
