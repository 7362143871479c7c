"""A tiny app-like config for pipeline-level tests (the fields of twinjax.config.Config)."""

from types import SimpleNamespace

import pytest


def _tiny_cfg(**train):
    data = SimpleNamespace(
        normalization="population", val_fraction=0.15, test_fraction=0.15, context=6, horizon=3
    )
    model = SimpleNamespace(cell="lstm", hidden=6, attention=True, attention_dim=4, min_scale=1e-3)
    defaults = dict(
        steps=4, personal_steps=4, lr=3e-3, personal_lr=3e-3, batch_windows=2,
        prior_strength=30.0, population_batch=0, chunk_size=0, eval_every=2, selection="none",
        checkpoint_every=4, keep_checkpoints=1, calibration_strength=20.0, progress=False,
        resume=True,
    )  # fmt: skip
    return SimpleNamespace(
        seed=0, data=data, model=model, train=SimpleNamespace(**defaults | train)
    )


@pytest.fixture(scope="session")
def tiny_cfg():
    """``tiny_cfg(**train_overrides)``: the config factory."""
    return _tiny_cfg
