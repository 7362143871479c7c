"""The population step taken in blocks of a device's individuals (``PopulationOptions.block``:
their loss and gradient sums carried from block to block, so memory is bounded by the block)
equals the step over all of them at once: the same losses and parameters up to float rounding
of sums taken in another order (1e-5, as the sharded-vs-one-device tests)."""

import jax
import numpy as np
import pytest

from twinjax.data import prepare, synthetic_cohort
from twinjax.train import PopulationOptions, fit_population
from twinjax.twins import TwinSpec

TOL = dict(rtol=1e-5, atol=1e-5)


@pytest.fixture(scope="module")
def setup():
    cohort = synthetic_cohort(jax.random.key(0), n_individuals=11, n_steps=40)
    spec = TwinSpec.for_cohort(cohort, hidden=4, attention_dim=4)
    return spec, prepare(cohort)[0]


@pytest.mark.integration  # 4 small fits compile (~30 s)
@pytest.mark.parametrize(("block", "devices"), [(4, 1), (5, 2)], ids=["4x1", "5x2"])
def test_blocks_of_individuals_give_the_same_population_fit(tmp_path, setup, block, devices):
    # 11 individuals in blocks of 4 on one device (3 blocks, 1 padding row), or over 2 devices
    # in blocks of 5 (6 rows a device: padded to 10, 2 blocks each)
    spec, arrays = setup
    options = PopulationOptions(steps=3, window=10, batch_windows=2, progress=False)
    fit = lambda path, **kw: fit_population(
        jax.random.key(3), spec, arrays, options._replace(**kw), path,
        devices=jax.devices()[:devices],
    )  # fmt: skip
    whole, losses_whole = fit(tmp_path / "whole", block=0)
    blocks, losses_blocks = fit(tmp_path / "blocks", block=block)
    np.testing.assert_allclose(losses_blocks, losses_whole, **TOL)
    jax.tree.map(lambda a, b: np.testing.assert_allclose(a, b, **TOL), blocks, whole)
    assert np.abs(losses_whole[-1] - losses_whole[0]) > 0
