"""The installed package runs: the wheel built from this repository, installed into a fresh venv,
runs ``twinjax --help``, a tiny default experiment and a tiny ``experiment=hierarchical`` from a
directory outside the repository, with the configs and drivers it ships.

The venv is made offline and fast: ``python -m venv --without-pip``; this venv's pip installs the
wheel into it with ``--no-deps --no-index``; then a ``.pth`` file appends this venv's
site-packages (the dependencies, already installed) to its path. A path a ``.pth`` adds is not a
site directory, so the ``.pth`` files there (the editable install's finder, which maps
``twinjax`` onto the repository) are not run: ``twinjax`` and ``twinjax_experiments`` come from
the wheel alone (checked). Building the wheel fetches setuptools and wheel into pip's isolated
build environment from the configured index. About a minute on a loaded 2-core CPU: marked integration (CI runs it after the fast tier).
A checkout run without installing (``PYTHONPATH=.``, as scripts/gpu_check.sh runs on a bare image)
finds its drivers too (not slow).
"""

import json
import os
import site
import subprocess
import sys
import sysconfig
import zipfile
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from twinjax_experiments.config import REGISTRY

ROOT = Path(__file__).resolve().parents[1]
TINY = [  # tests/test_app.py's tiny default experiment
    "model.family=recurrent", "data.n_individuals=4", "data.n_steps=80", "data.context=8",
    "data.horizon=4", "model.hidden=8", "model.attention_dim=4", "train.steps=20",
    "train.batch_windows=2", "train.personal_steps=20", "train.eval_every=5",
    "train.progress=false", "experiment.n_plot_individuals=2",
]  # fmt: skip
TINY_HIERARCHICAL = [  # linear growth by SVI on a small panel
    "experiment.inference=svi", "experiment.svi_steps=200", "experiment.svi_draws=50",
    "experiment.predictive_draws=20", "experiment.grid_points=11", "experiment.n_plot_subjects=2",
    "experiment.progress=false",
]  # fmt: skip


@pytest.fixture(scope="module")
def installed(tmp_path_factory):
    """(wheel, venv) for the wheel of this repository installed into a fresh venv."""
    tmp = tmp_path_factory.mktemp("wheel")
    pip = [sys.executable, "-m", "pip"]
    subprocess.run([*pip, "wheel", str(ROOT), "--no-deps", "-q", "-w", str(tmp / "dist")],
                   check=True, timeout=600)  # fmt: skip
    (wheel,) = (tmp / "dist").glob("twinjax-*.whl")
    venv = tmp / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    python = venv / "bin" / "python"
    subprocess.run([*pip, "--python", str(python), "install", "--no-deps", "--no-index", "-q",
                    str(wheel)], check=True, timeout=600)  # fmt: skip
    purelib = subprocess.run([python, "-c", "import sysconfig; print(sysconfig.get_path('purelib'))"],
                             capture_output=True, text=True, check=True).stdout.strip()  # fmt: skip
    ours = [sysconfig.get_path("purelib"), *site.getsitepackages()]
    Path(purelib, "twinjax_deps.pth").write_text("\n".join(dict.fromkeys(ours)) + "\n")
    return wheel, venv


def _run(cwd, *args, timeout=600):
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    env |= {"XLA_FLAGS": "", "MPLBACKEND": "Agg", "HYDRA_FULL_ERROR": "1"}
    proc = subprocess.run([str(a) for a in args], cwd=cwd, env=env, capture_output=True,
                          text=True, timeout=timeout)  # fmt: skip
    assert proc.returncode == 0, (proc.stdout + proc.stderr)[-3000:]
    return proc.stdout


@pytest.mark.integration
def test_the_wheel_ships_configs_and_drivers_under_names_of_its_own(installed):
    wheel, _ = installed
    names = set(zipfile.ZipFile(wheel).namelist())
    tops = {n.split("/")[0] for n in names}
    assert tops == {"twinjax", "twinjax_experiments", "twinjax-0.1.0.dist-info"}, tops
    shipped = {str(p.relative_to(ROOT / "configs")) for p in (ROOT / "configs").rglob("*.yaml")}
    assert {f"twinjax/configs/{p}" for p in shipped} <= names
    drivers = {e.driver.replace(".", "/") + ".py" for e in REGISTRY.values()}
    assert drivers | {"twinjax_experiments/config.py", "twinjax_experiments/report.py"} <= names


@pytest.mark.integration
def test_the_installed_command_runs_from_elsewhere(installed, tmp_path):
    """From another directory: the command's help, a tiny default run and a tiny
    ``experiment=hierarchical`` on a user's file, all from the packaged configs."""
    _, venv = installed
    python, twinjax = venv / "bin" / "python", venv / "bin" / "twinjax"
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    where = _run(elsewhere, python, "-c", "import sys, twinjax, twinjax_experiments, "
                 "importlib.util as u; print(twinjax.__file__, twinjax_experiments.__file__, "
                 "u.find_spec('experiments'))")  # fmt: skip
    site_dir = str(venv.resolve())
    twinjax_file, drivers_file, experiments_spec = where.split()
    assert twinjax_file.startswith(site_dir) and drivers_file.startswith(site_dir), where
    assert experiments_spec == "None"  # no top-level package of that name

    out = _run(elsewhere, twinjax, "--help")
    assert all(f"\n  {name} " in out for name in REGISTRY), out

    run = tmp_path / "default"
    _run(elsewhere, twinjax, f"hydra.run.dir={run}", *TINY)
    metrics = json.loads((run / "metrics.json").read_text())
    assert np.isfinite(metrics["objective"])
    hydra = (run / ".hydra" / "hydra.yaml").read_text()
    assert f"path: {site_dir}" in hydra and "twinjax/configs" in hydra  # the packaged configs

    rng = np.random.default_rng(0)
    subjects, visits = np.repeat(np.arange(6), 5), np.tile(np.arange(5.0), 6)
    value = 2.0 + rng.normal(0, 0.5, 6)[subjects] + 0.3 * visits + rng.normal(0, 0.1, 30)
    obs = pd.DataFrame({"subject_id": subjects, "time": visits, "variable": "y", "value": value})
    obs.to_csv(tmp_path / "obs.csv", index=False)
    run = tmp_path / "hierarchical"
    _run(elsewhere, twinjax, f"hydra.run.dir={run}",
         "experiment=hierarchical", "data=files", f"data.observations={tmp_path / 'obs.csv'}",
         *TINY_HIERARCHICAL)  # fmt: skip
    metrics = json.loads((run / "metrics.json").read_text())
    assert "objective" in metrics
    assert (run / "posterior_summary.csv").is_file()


def test_a_checkout_run_without_installing_imports_its_drivers_as_twinjax_experiments():
    """Without the editable install's finder (a bare image: PYTHONPATH=the checkout), the app
    imports experiments/ under the installed name and --help lists every experiment."""
    code = (
        "import sys\n"
        "sys.meta_path = [f for f in sys.meta_path if 'Editable' not in getattr(f, '__name__', '')]\n"
        "import importlib.util as u\n"
        "assert u.find_spec('twinjax_experiments') is None\n"
        "from twinjax.cli_help import help_text\n"
        "print(help_text([]))\n"
        "import twinjax_experiments\n"
        "print(twinjax_experiments.__file__)\n"
    )
    out = _run(ROOT, sys.executable, "-c", code, timeout=300)
    assert out.splitlines()[-1] == str(ROOT / "experiments" / "__init__.py")
    assert all(f"\n  {name} " in out for name in REGISTRY), out
