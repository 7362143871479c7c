"""Training curves: TensorBoard's own reader finds what the loops wrote, and the CSV copy agrees."""

import jax
import jax.numpy as jnp
import numpy as np
import numpyro
import numpyro.distributions as dist
import pandas as pd
import pytest
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

from twinjax import federated as fl
from twinjax import pipeline
from twinjax.bayes import run_svi
from twinjax.data import synthetic_cohort
from twinjax.runtime.scalars import ScalarWriter, current, flatten


def _read(logdir) -> EventAccumulator:
    acc = EventAccumulator(str(logdir), size_guidance={"scalars": 0, "tensors": 0})
    acc.Reload()
    return acc


def _curve(acc: EventAccumulator, tag: str) -> dict[int, float]:
    return {e.step: e.value for e in acc.Scalars(tag)}


def test_writer_events_csv_and_hparams_agree(tmp_path):
    with ScalarWriter(tmp_path) as w:
        w.scalar("a/loss", 0.25, step=1)
        w.scalars({"loss": 0.125, "acc": 0.75}, step=2, prefix="a")
        w.series("b/curve", np.arange(1000.0), max_points=100)  # every 10th step and the last
        w.hparams({"train": {"lr": 0.01, "steps": 5}, "data": {"target": None}}, {"objective": 1.5})
    acc = _read(tmp_path)
    assert _curve(acc, "a/loss") == {1: 0.25, 2: 0.125} and _curve(acc, "a/acc") == {2: 0.75}
    curve = _curve(acc, "b/curve")
    assert sorted(curve)[:2] == [10, 20] and len(curve) == 100 and curve[1000] == 999.0
    assert _curve(acc, "objective") == {0: 1.5}
    assert set(acc.PluginTagToContent("hparams")) >= {
        "_hparams_/experiment",
        "_hparams_/session_start_info",
    }
    csv = pd.read_csv(tmp_path / "scalars.csv")
    events = {(t, s, v) for t in acc.Tags()["scalars"] for s, v in _curve(acc, t).items()}
    assert set(zip(csv.tag, csv.step, csv.value, strict=True)) == events
    hp = pd.read_csv(tmp_path / "hparams.csv", keep_default_na=False)
    assert dict(zip(hp.name, hp.value, strict=True)) == {
        "train.lr": "0.01", "train.steps": "5", "data.target": "None", "objective": "1.5"
    }  # fmt: skip


def test_nothing_is_written_without_a_default_writer(tmp_path):
    assert current() is None
    with ScalarWriter(tmp_path) as w:
        with w.as_default():
            assert current() is w
        assert current() is None
    assert flatten({"a": {"b": 1, "c": {"d": 2}}, "e": 3}) == {"a.b": 1, "a.c.d": 2, "e": 3}


@pytest.mark.integration
def test_twin_training_curves_match_the_returned_losses(tmp_path, tiny_cfg):
    cohort = synthetic_cohort(jax.random.key(0), n_individuals=4, n_steps=50)
    cfg = tiny_cfg(steps=12, personal_steps=4, checkpoint_every=6)
    with ScalarWriter(tmp_path / "tb") as w, w.as_default():
        fit = pipeline.fit_twins(jax.random.key(1), cohort, cfg, tmp_path)
    acc = _read(tmp_path / "tb")
    pop = _curve(acc, "population/loss")
    assert sorted(pop) == [10, 12]  # every 10 steps and the last
    # float32 losses written as they were returned
    np.testing.assert_allclose([pop[10], pop[12]], fit.population_losses[[9, 11]], rtol=1e-6)
    assert sorted(_curve(acc, "population/val_nll")) == [0, 6, 12]
    assert sorted(_curve(acc, "personal/chunk0/val_nll")) == [0, 2, 4]  # eval_every=2
    assert sorted(_curve(acc, "personal/chunk0/loss")) == [4]
    val = _curve(acc, "personal/chunk0/val_nll")
    assert all(np.isfinite(list(val.values()))) and val[0] == pytest.approx(
        _curve(acc, "population/val_nll")[12], rel=1e-5
    )  # personalization starts from the population twin


@pytest.mark.integration
def test_federated_rounds_and_svi_write_their_curves(tmp_path):
    train, _ = fl.synthetic_alpha_beta(3, num_clients=6, dim=4, num_classes=3, max_samples=20)
    algo = fl.fedavg(fl.logistic_loss, clients_per_round=3, local_lr=0.1, batch_size=8,
                     execution=fl.Execution(compiler_options=fl.FAST_COMPILE))  # fmt: skip
    init = algo.init(fl.logistic_init(4, 3), num_clients=6)

    def model(y):
        mu = numpyro.sample("mu", dist.Normal(0.0, 10.0))
        numpyro.sample("y", dist.Normal(mu, 1.0), obs=y)

    with ScalarWriter(tmp_path) as w, w.as_default():
        _, hist = fl.run_rounds(algo, init, train, jax.random.key(0), rounds=3, progress=False,
                                evaluate=lambda p: fl.logistic_evaluate(p, train),
                                desc="fed avg")  # fmt: skip
        svi = run_svi(model, jax.random.key(1), jnp.array([0.8, 1.2]), steps=30, lr=0.1)
    acc = _read(tmp_path)
    for key in hist[-1]:
        if key != "round":
            got = _curve(acc, f"fed_avg/{key}")
            assert got == {h["round"]: pytest.approx(h[key]) for h in hist if key in h}
    assert _curve(acc, "svi/neg_elbo") == {i + 1: pytest.approx(v) for i, v in
                                          enumerate(svi.losses)}  # fmt: skip
