"""Production use and clear errors: bad split fractions are a one-line ConfigError before any
training; zero fractions train on everything (no objective, no recalibration, no test metrics);
subjects without validation targets are named and get the pooled calibration factor; a 4-visit
panel runs with the data=files defaults (auto twin) and the recurrent twin stops with values that
fit; metrics.json never holds a bare NaN; a run with nothing to
optimise (experiment=forecast) logs no NaN warning."""

import json
import logging
import math
import re
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest
from hydra import compose, initialize_config_dir

import twinjax
from twinjax import pipeline
from twinjax.__main__ import check_objective, metrics_json, run_experiment
from twinjax.data import CohortError, read_cohort

ROOT = Path(__file__).resolve().parents[1]
TINY = ["model.hidden=4", "model.attention_dim=4", "train.steps=3", "train.personal_steps=3",
        "train.batch_windows=2", "train.eval_every=3", "train.progress=false",
        "experiment.n_plot_individuals=1"]  # fmt: skip
SMALL = ["data.context=4", "data.horizon=1"]  # (horizon 1: no sampled rollouts to calibrate)
SYNTHETIC = ["data.n_individuals=3", "data.n_steps=30", *SMALL]


def config(*overrides: str):
    with initialize_config_dir(config_dir=str(ROOT / "configs"), version_base="1.3"):
        return compose("config", overrides=list(overrides))


def app(out_dir: Path, *overrides: str, cfg=None) -> dict:
    """``python -m twinjax OVERRIDES`` in process (the app's dispatch); the metrics.json read
    back as strict JSON (a bare NaN fails)."""
    run_experiment(config(*overrides) if cfg is None else cfg, out_dir)
    text = (out_dir / "metrics.json").read_text()
    return json.loads(text, parse_constant=lambda c: pytest.fail(f"{c} in metrics.json"))


def panel(path: Path, visits: dict) -> Path:
    """A long-format CSV: one variable ``score`` at each subject's visit times."""
    rng = np.random.default_rng(0)
    rows = [(s, t, "score", 50 + 10 * rng.standard_normal()) for s, ts in visits.items()
            for t in ts]  # fmt: skip
    pd.DataFrame(rows, columns=["subject_id", "time", "variable", "value"]).to_csv(
        path, index=False
    )
    return path


@pytest.mark.parametrize(
    "val, test",
    [(-0.1, 0.15), (0.15, 1.0), (0.5, 0.5), (0.7, 0.4), (math.nan, 0.15), (0.15, math.inf)],
)
def test_bad_split_fractions_are_one_line_config_errors_naming_the_keys(val, test):
    cohort = read_cohort(_long({"a": 40, "b": 40}))
    data = SimpleNamespace(target=None, val_fraction=val, test_fraction=test, context=4, horizon=2)
    with pytest.raises(pipeline.ConfigError) as e:
        pipeline.check_cohort(cohort, data)
    message = str(e.value)
    assert f"data.val_fraction={val}, data.test_fraction={test}" in message
    assert "[0, 1)" in message and "sum below 1" in message and "\n" not in message


def _long(lengths: dict) -> pd.DataFrame:
    rows = [(s, float(t), "x", float(t)) for s, n in lengths.items() for t in range(n)]
    return pd.DataFrame(rows, columns=["subject_id", "time", "variable", "value"])


@pytest.fixture(scope="module")
def production_run(tmp_path_factory):
    """data.val_fraction=0 data.test_fraction=0: a fit on everything (the run directory)."""
    out = tmp_path_factory.mktemp("production")
    return out, app(out, *SYNTHETIC, *TINY, "data.val_fraction=0", "data.test_fraction=0")


@pytest.mark.integration
def test_zero_fractions_train_on_everything_without_objective_or_recalibration(
    production_run, caplog
):
    out, metrics = production_run
    assert metrics["objective"] is None  # no validation period
    assert metrics["population"] is None and metrics["personalized"] is None  # no test period
    assert metrics["rmse_ratio_personalized_over_population"] is None
    assert metrics["warnings"] == []  # no "overfitting" advice from a NaN ratio
    (warning,) = metrics["data_summary"]["warnings"]  # said once
    assert "no validation period (data.val_fraction=0)" in warning and "factor 1.0" in warning
    calibration = twinjax.load(out).calibration
    for factor in calibration.values():
        np.testing.assert_array_equal(factor, 1.0)  # never 0.0 from an empty period
    report = (out / "report.md").read_text()
    assert "there is no test period (data.test_fraction=0" in report
    assert (out / "population_loss.png").exists()


@pytest.mark.integration
def test_forecast_has_nothing_to_optimise_and_logs_no_nan_warning(production_run, tmp_path, caplog):
    twin, _ = production_run
    with caplog.at_level(logging.WARNING):
        metrics = app(tmp_path, "experiment=forecast", f"twin={twin}", *SYNTHETIC,
                      "model.hidden=4", "model.attention_dim=4", "experiment.horizon=2",
                      "experiment.n_samples=4", "experiment.n_plot_subjects=1")  # fmt: skip
    assert metrics["objective"] is None and metrics["n_known"] == 3
    nan = [r.getMessage() for r in caplog.records if re.search(r"\bnan\b", r.getMessage(), re.I)]
    assert nan == []  # neither "the objective of this run is nan" nor tensorboardX's "NaN or Inf"
    hparams = (tmp_path / "tensorboard" / "hparams.csv").read_text()
    assert "metric,objective" not in hparams
    assert check_objective({"objective": None}, "forecast") is None
    with pytest.raises(TypeError, match="a number, or None"):
        check_objective({"objective": "low"}, "forecast")


@pytest.mark.integration
def test_subjects_without_validation_targets_are_named_and_get_the_pooled_factor(tmp_path):
    # a 4-visit panel on a monthly grid of 25 steps: train [0, 17), validation [17, 21), test
    # [21, 25); a visit at month 18 is the only validation target
    visits = {f"s{i:02d}": [0, 6, 18 if i < 4 else 12, 24] for i in range(10)}
    csv = panel(tmp_path / "panel.csv", visits)
    metrics = app(tmp_path / "run", "data=files", f"data.observations={csv}",
                  "model.family=recurrent", *SMALL, *TINY)  # fmt: skip
    summary = metrics["data_summary"]
    no_val = [f"s{i:02d}" for i in range(4, 10)]
    assert summary["subjects_without_validation_targets"] == no_val
    assert any(w.startswith("6 subject(s) have no observed target in their validation period")
               and "'s04'" in w for w in summary["warnings"])  # fmt: skip
    assert math.isfinite(metrics["objective"])  # the mean over the 4 subjects that have one
    personal = twinjax.load(tmp_path / "run").calibration["personal"]
    assert (personal > 0).all()
    assert (personal[4:] == personal[4]).all()  # each the cohort's pooled factor
    assert (personal[:4] != personal[4]).all()  # the others their own
    assert metrics["personalized"]["n_targets"] == 10  # every subject has its month-24 visit


def test_four_visit_panel_runs_with_the_defaults_or_stops_with_values_that_fit(tmp_path):
    csv = panel(tmp_path / "panel.csv", {f"s{i:02d}": [0, 1, 2, 3] for i in range(12)})
    files = ["data=files", f"data.observations={csv}"]
    metrics = app(tmp_path / "auto", *files)  # data=files defaults: the auto twin, strict JSON
    assert metrics["objective"] is None or math.isfinite(metrics["objective"])
    with pytest.raises(CohortError) as e:  # the recurrent twin needs an 18-step window
        app(tmp_path / "run", *files, "model.family=recurrent", *TINY)
    message = str(e.value)
    assert "data.context=12 + data.horizon=6 = 18 grid steps" in message
    assert "'s00' (4 steps)" in message and "data.context=1 data.horizon=1" in message
    assert not (tmp_path / "run" / "checkpoints").exists()  # stopped before any training


def test_metrics_json_writes_non_finite_numbers_as_null(tmp_path, monkeypatch):
    metrics = {"objective": 1.5, "a": math.nan, "b": [np.float32("inf"), 2],
               "c": {"d": np.array([1.0, np.nan]), "e": (np.int64(3), -math.inf)}}  # fmt: skip
    text = metrics_json(metrics)
    assert "NaN" not in text and "Infinity" not in text
    assert json.loads(text) == {"objective": 1.5, "a": None, "b": [None, 2],
                                "c": {"d": [1.0, None], "e": [3, None]}}  # fmt: skip
    import twinjax.__main__ as main

    cfg = config()
    run = lambda config, out: {**metrics, "objective": math.nan}
    # the app's own importlib name only: patching importlib.import_module itself would also
    # catch whatever the run imports lazily (it failed so when this test ran alone)
    fake = SimpleNamespace(import_module=lambda name: SimpleNamespace(run=run))
    monkeypatch.setattr(main, "importlib", fake)
    assert app(tmp_path, cfg=cfg) == {**json.loads(text), "objective": None}


def _literal_fields(cls, prefix=""):
    """``(key, choices, optional)`` of every Literal field of an option dataclass, nested ones
    too (their defaults' classes)."""
    import dataclasses
    import typing

    hints = typing.get_type_hints(cls)
    for f in dataclasses.fields(cls):
        hint = hints[f.name]
        if f.default_factory is not dataclasses.MISSING and dataclasses.is_dataclass(hint):
            yield from _literal_fields(hint, f"{prefix}{f.name}.")
            continue
        args = [hint, *typing.get_args(hint)]
        literal = [a for a in args if typing.get_origin(a) is typing.Literal]
        if literal:
            yield f"{prefix}{f.name}", typing.get_args(literal[0]), type(None) in args


def test_every_choice_is_checked_before_anything_runs(tmp_path):
    from twinjax.config import Config, experiments

    cases = [((), *field) for field in _literal_fields(Config)]
    for name, entry in experiments().items():
        cases += [
            ((f"experiment={name}",), *f) for f in _literal_fields(entry.options, "experiment.")
        ]
    keys = {key for _, key, _, _ in cases}
    assert {"data.source", "model.cell", "model.family", "train.selection",
            "experiment.backend", "experiment.byzantine_attacks"} <= keys, keys  # fmt: skip
    for k, (chosen, key, choices, optional) in enumerate(cases):
        is_list = key in ("experiment.layers", "experiment.byzantine_attacks", "experiment.models")
        value = "[nonsense]" if is_list else "nonsense"
        with pytest.raises(pipeline.ConfigError) as e:
            run_experiment(config(*chosen, f"{key}={value}"), tmp_path / str(k))
        listed = ", ".join(choices[:-1] if not optional else choices)
        last = "null" if optional else choices[-1]
        assert str(e.value) == f"{key}='nonsense': use {listed} or {last}", str(e.value)
        assert not (tmp_path / str(k)).exists()  # refused before the run wrote anything
    # the Hydra schema keeps the library's classes (a subclass of each, with str for the choices)
    cfg = config("model.cell=gru", "experiment=hierarchical", "experiment.inference=svi")
    from omegaconf import OmegaConf

    from twinjax.bayes import HierarchicalOptions
    from twinjax.twins.options import ModelConfig

    obj = OmegaConf.to_object(cfg)
    assert isinstance(obj.model, ModelConfig) and obj.model.cell == "gru"
    assert isinstance(obj.experiment, HierarchicalOptions) and obj.experiment.inference == "svi"
    with pytest.raises(pipeline.ConfigError, match="experiment.inference='hmc': use nuts or svi"):
        run_experiment(config("experiment=hierarchical", "experiment.inference=hmc"), tmp_path)
