"""The documentation site builds with no warning (``mkdocs build --strict``: a docstring the API
pages cannot parse, a dead link or a missing snippet fails), and the worked examples it shows
run as written (short chains: ``QUICK=1``)."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[1]
EXAMPLES = sorted((ROOT / "examples").glob("*.py"))


def test_the_site_builds_without_warnings(tmp_path):
    env = {**os.environ, "NO_MKDOCS_2_WARNING": "1"}
    proc = subprocess.run([sys.executable, "-m", "mkdocs", "build", "--strict", "-q",
                           "-d", str(tmp_path / "site")], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=300)  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert (tmp_path / "site" / "api" / "estimator" / "index.html").exists()
    pages = (ROOT / "mkdocs.yml").read_text()
    assert all(f"examples/{e.stem}.md" in pages for e in EXAMPLES)  # every example has a page


@pytest.mark.parametrize("example", EXAMPLES, ids=lambda p: p.stem)
def test_example_runs(example, tmp_path):
    env = {**os.environ, "QUICK": "1", "MPLBACKEND": "Agg", "XLA_FLAGS": ""}
    proc = subprocess.run([sys.executable, str(example)], cwd=tmp_path, env=env,
                          capture_output=True, text=True, timeout=600)  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-3000:]
