"""The recurrent twins' report carries the last value carried forward on the same test points,
scored by twinjax.eval.score (CRPS, coverage) and checked against a hand computation."""

import json
from pathlib import Path

import jax
import numpy as np
import pytest
from hydra import compose, initialize_config_dir

from twinjax import pipeline
from twinjax.__main__ import run_experiment

ROOT = Path(__file__).resolve().parents[1]
TINY = ["data.n_individuals=4", "data.n_steps=60", "data.context=4", "data.horizon=1",
        "model.hidden=4", "model.attention_dim=4", "train.steps=3", "train.personal_steps=3",
        "train.batch_windows=2", "train.eval_every=3", "train.progress=false",
        "experiment.n_plot_individuals=1"]  # fmt: skip


@pytest.mark.integration
def test_report_scores_the_twins_next_to_the_last_value(tmp_path):
    with initialize_config_dir(config_dir=str(ROOT / "configs"), version_base="1.3"):
        cfg = compose("config", overrides=TINY)
    run_experiment(cfg, tmp_path)
    m = json.loads((tmp_path / "metrics.json").read_text())
    skill = m["skill"]
    assert set(skill) == {"population", "personalized", "last value"}
    assert len({row["n"] for row in skill.values()}) == 1  # the same points
    assert skill["last value"]["crps_vs_last_value"] == 1.0
    for name in ("population", "personalized"):
        ratio = skill[name]["crps"] / skill["last value"]["crps"]
        assert np.isclose(skill[name]["crps_vs_last_value"], ratio)
    report = (tmp_path / "report.md").read_text()
    assert "next to the last value carried forward" in report
    verdict = "beats the twins" if min(skill[n]["crps_vs_last_value"] for n in
                                       ("population", "personalized")) > 1 else "x the last"
    assert verdict in report  # fmt: skip
    # LOCF by hand: the previous observed target before each observed test step
    cohort = pipeline.load_cohort(jax.random.split(jax.random.key(0), 3)[0],
                                  _data(cfg))  # fmt: skip
    cohort = pipeline.check_cohort(cohort, _data(cfg))
    arrays, _ = pipeline.prepare_cohort(cohort, _data(cfg))
    errors = []
    for i in range(cohort.n_individuals):
        seen = np.nonzero(cohort.mask[i, :, 0])[0]
        for t in np.nonzero(np.asarray(arrays.test)[i] & cohort.mask[i, :, 0])[0]:
            before = seen[seen < t]
            if len(before):
                errors.append(cohort.values[i, t, 0] - cohort.values[i, before[-1], 0])
    assert len(errors) == skill["last value"]["n"]
    np.testing.assert_allclose(np.sqrt(np.mean(np.square(errors))),
                               skill["last value"]["rmse"], rtol=1e-5)  # fmt: skip


def _data(cfg):
    from omegaconf import OmegaConf

    return OmegaConf.to_object(cfg).data
