"""An interrupted run resumes from its orbax checkpoint to the uninterrupted final state."""

import jax
import numpy as np
import pytest

from twinjax import federated as fl

COMMON = dict(
    clients_per_round=4,
    local_lr=0.1,
    batch_size=16,
    local_epochs=2,
    execution=fl.Execution(compiler_options=fl.FAST_COMPILE),
)


def _algorithm(kind: str) -> fl.FederatedAlgorithm:
    if kind == "scaffold":  # client state (control variates), stateless aggregator
        return fl.scaffold(fl.logistic_loss, **COMMON)
    # stateless clients, aggregator state (the adaptive clip norm)
    dp = fl.DPConfig(0.5, 0.1, adaptive=True)
    return fl.fedavg(fl.logistic_loss, aggregator=fl.dp_mean(dp, expected_clients=4), **COMMON)


@pytest.mark.integration
@pytest.mark.parametrize("kind", ["scaffold", "dp_adaptive"])
def test_resume_equals_uninterrupted(tmp_path, kind):
    train, _ = fl.synthetic_alpha_beta(3, num_clients=10, dim=5, num_classes=3, max_samples=30)
    algo = _algorithm(kind)
    init = algo.init(fl.logistic_init(5, 3), num_clients=10)
    key = jax.random.key(7)
    kw = dict(rounds=5, progress=False, evaluate=lambda p: fl.logistic_evaluate(p, train))
    full, hist_full = fl.run_rounds(algo, init, train, key, **kw)
    assert algo.apply._cache_size() == 1  # 5 rounds, one compilation (no dtype/shape drift)
    ckpt = tmp_path / "ckpt"
    part, _ = fl.run_rounds(algo, init, train, key, checkpoint_dir=ckpt, stop_after=2, **kw)
    assert int(part.round) == 2
    # a fresh process would only have the initial state and the checkpoint directory
    resumed, hist = fl.run_rounds(algo, init, train, key, checkpoint_dir=ckpt, **kw)
    assert int(resumed.round) == 5
    for a, b in zip(jax.tree.leaves(full), jax.tree.leaves(resumed), strict=True):
        np.testing.assert_array_equal(np.asarray(a), np.asarray(b))
    assert hist == hist_full  # the history before the interruption came from the checkpoint
    assert not np.allclose(np.asarray(full.params["w"]), 0)
    if kind == "dp_adaptive":
        assert float(full.aggregator.clip_norm) != pytest.approx(0.1)  # the state moved
