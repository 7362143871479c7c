"""Saved twins carry a manifest (size and SHA-256 of every file, written last): a truncated
``model/params`` file or ``meta.json`` is refused naming the file, by ``twinjax.load`` and by
``experiment=forecast twin=DIR``; a model without a manifest (an older twinjax) loads with a
warning; the auto twin's ``model/auto.json`` is checked the same way."""

import json
import logging
import re
import shutil
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from hydra import compose, initialize_config_dir

import twinjax
from twinjax import pipeline
from twinjax.__main__ import USER_ERRORS, run_experiment
from twinjax.bundle import TwinBundle, save_bundle
from twinjax.data import synthetic_cohort
from twinjax.eval.auto import AutoTwin, load_auto, save_auto
from twinjax.eval.conformal import QLEVELS
from twinjax.runtime.manifest import MANIFEST, DamagedModelError
from twinjax.train import PersonalizeOptions
from twinjax.twins import init_params

ROOT = Path(__file__).resolve().parents[2]
ADVICE = "re-save the model from the run's checkpoints (rerun the run in its directory), or retrain"


def _bundle(tiny_cfg) -> TwinBundle:
    """Twins as a run saves them (untrained parameters: loading never looks at their values)."""
    cohort = synthetic_cohort(jax.random.key(0), n_individuals=3, n_steps=30)
    cfg = tiny_cfg()
    spec = pipeline.twin_spec(cohort, cfg.model)
    _, scalers = pipeline.prepare_cohort(cohort, cfg.data)
    population = init_params(jax.random.key(1), spec)
    n, f = cohort.n_individuals, cohort.n_features
    return TwinBundle(
        spec=spec, population=population,
        personal=jax.tree.map(lambda x: jnp.stack([x + i for i in range(n)]), population),
        scalers=scalers, calibration={"population": np.ones(f), "personal": np.ones((n, f))},
        subject_ids=tuple(cohort.subject_ids), t0=np.zeros(n), step=1.0,
        variables=tuple(cohort.variables), intervention_kinds=tuple(cohort.intervention_kinds),
        static_names=tuple(cohort.static_names), normalization="population", history=8,
        options=PersonalizeOptions(), fingerprint={}, config={}, version=twinjax.__version__,
    )  # fmt: skip


@pytest.fixture(scope="module")
def saved(tmp_path_factory, tiny_cfg) -> tuple[Path, TwinBundle]:
    run = tmp_path_factory.mktemp("saved") / "run"
    bundle = _bundle(tiny_cfg)
    save_bundle(bundle, run / "model")
    return run, bundle


@pytest.fixture
def run(saved, tmp_path) -> Path:
    """A copy of the saved run to damage."""
    return Path(shutil.copytree(saved[0], tmp_path / "run"))


def _truncate(path: Path) -> tuple[int, int]:
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    return len(data) // 2, len(data)


def _forecast(twin: Path, out: Path) -> None:
    with initialize_config_dir(config_dir=str(ROOT / "configs"), version_base="1.3"):
        cfg = compose("config", overrides=["experiment=forecast", f"twin={twin}"])
    run_experiment(cfg, out)


def test_the_manifest_lists_every_file_and_the_twins_load_back(saved):
    run, bundle = saved
    listed = json.loads((run / "model" / MANIFEST).read_text())["files"]
    on_disk = sorted(p.relative_to(run / "model").as_posix()
                     for p in (run / "model").rglob("*") if p.is_file() and p.name != MANIFEST)  # fmt: skip
    assert sorted(listed) == on_disk and "meta.json" in listed
    assert any(k.startswith("params/") for k in listed)
    assert [p.name for p in run.iterdir()] == ["model"]  # no temporary beside it
    loaded = twinjax.load(run)
    for a, b in zip(
        jax.tree.leaves(bundle.personal), jax.tree.leaves(loaded.personal), strict=True
    ):
        np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("victim", ["params", "meta.json"])
def test_a_truncated_file_is_refused_naming_it(run, tmp_path, victim):
    model = run / "model"
    if victim == "params":  # the largest file of the orbax checkpoint
        file = max((p for p in (model / "params").rglob("*") if p.is_file()),
                   key=lambda p: p.stat().st_size)  # fmt: skip
    else:
        file = model / "meta.json"
    now, then = _truncate(file)
    message = f"{file} is damaged or partly written ({now} bytes, {then} when saved); {ADVICE}"
    with pytest.raises(DamagedModelError) as e:
        twinjax.load(run)
    assert str(e.value) == message
    with pytest.raises(DamagedModelError) as e:  # the app: one line, exit status 1
        _forecast(run, tmp_path / "forecast")
    assert str(e.value) == message and isinstance(e.value, USER_ERRORS)
    assert not (tmp_path / "forecast" / "forecasts.csv").exists()


def test_a_missing_file_is_refused_as_a_partial_model(run):
    victim = next(p for p in (run / "model" / "params").rglob("*") if p.is_file())
    victim.unlink()
    with pytest.raises(DamagedModelError, match=re.escape(f"{victim} is missing")):
        twinjax.load(run)


def test_a_model_without_a_manifest_loads_with_a_warning_and_bad_json_names_its_file(
    run, saved, caplog
):
    (run / "model" / MANIFEST).unlink()  # as an older twinjax saved it
    with caplog.at_level(logging.WARNING, logger="twinjax.runtime.manifest"):
        loaded = twinjax.load(run)
    assert f"{run / 'model'} has no {MANIFEST}" in caplog.text
    assert loaded.subject_ids == saved[1].subject_ids
    _truncate(run / "model" / "meta.json")
    with pytest.raises(DamagedModelError) as e:
        twinjax.load(run)
    assert str(e.value).startswith(
        f"{run / 'model' / 'meta.json'} does not read back (JSONDecodeError: "
    ) and str(e.value).endswith(ADVICE)  # fmt: skip


def test_the_auto_twins_model_is_checked_too(tmp_path, caplog):
    q = np.linspace(-1.0, 1.0, len(QLEVELS))[:, None] * np.ones((1, 2))
    twin = AutoTwin(members=("last",), quantiles=q, horizon=2, period=1, variable="y",
                    choice={"name": "last", "validation_crps": {"last": 1.0}},
                    families=("last",))  # fmt: skip
    save_auto(twin, tmp_path / "model")
    assert sorted(p.name for p in (tmp_path / "model").iterdir()) == ["auto.json", MANIFEST]
    np.testing.assert_array_equal(load_auto(tmp_path).quantiles, q)
    now, then = _truncate(tmp_path / "model" / "auto.json")
    with pytest.raises(DamagedModelError) as e:
        load_auto(tmp_path)
    assert str(e.value) == (f"{tmp_path / 'model' / 'auto.json'} is damaged or partly written "
                            f"({now} bytes, {then} when saved); {ADVICE}")  # fmt: skip
    save_auto(twin, tmp_path / "model")  # saved again: whole, replacing the damaged one
    (tmp_path / "model" / MANIFEST).unlink()
    with caplog.at_level(logging.WARNING, logger="twinjax.runtime.manifest"):
        assert load_auto(tmp_path).members == ("last",)
    assert f"has no {MANIFEST}" in caplog.text


def test_saving_over_a_directory_that_is_not_only_a_model_is_refused(saved, tmp_path):
    (tmp_path / "notes.txt").write_text("mine")  # saving replaces the whole directory
    with pytest.raises(FileExistsError, match=re.escape(f"{tmp_path} holds 'notes.txt'")):
        save_bundle(saved[1], tmp_path)
    assert [p.name for p in tmp_path.iterdir()] == ["notes.txt"]
    save_bundle(saved[1], saved[0] / "model")  # over a saved model: replaced whole
    assert twinjax.load(saved[0]).subject_ids == saved[1].subject_ids
