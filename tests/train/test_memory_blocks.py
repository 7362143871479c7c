"""Evaluations outside a training step are sized by their own memory analysis (#22 item 1)."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from twinjax.data import prepare, synthetic_cohort
from twinjax.train.devices import rows_that_fit
from twinjax.train.validation import max_segment, val_nll, val_nll_blocks, validation_rows
from twinjax.twins import TwinSpec, init_params


@pytest.mark.integration
def test_validation_nll_in_blocks_equals_all_at_once():
    cohort = synthetic_cohort(jax.random.key(0), n_individuals=7, n_steps=60)
    arrays, _ = prepare(cohort)
    spec = TwinSpec.for_cohort(cohort, hidden=6, attention_dim=4)
    keys = jax.random.split(jax.random.key(1), 7)
    params = jax.vmap(lambda k: init_params(k, spec))(keys)  # a different twin per individual
    size = max_segment(arrays.val)
    whole = val_nll(params, arrays, spec, 11, size)
    for rows in (1, 3, 7):  # 3 does not divide 7: the last block overlaps the one before
        np.testing.assert_allclose(val_nll_blocks(params, arrays, spec, 11, size, rows), whole,
                                   rtol=1e-6)  # fmt: skip


def test_rows_that_fit_scale_the_probe_to_the_budget(monkeypatch):
    cohort = synthetic_cohort(jax.random.key(0), n_individuals=4, n_steps=200)
    arrays, _ = prepare(cohort)
    spec = TwinSpec.for_cohort(cohort, hidden=8, attention_dim=4)
    pop = init_params(jax.random.key(1), spec)
    size = max_segment(arrays.val)
    # a cohort of 1,000 individuals (shapes only), and a budget of 100 individuals' worth
    big = jax.tree.map(lambda x: jnp.zeros((1000, *x.shape[1:]), x.dtype), arrays)
    probe = val_nll.lower(
        jax.tree.map(lambda x: jax.ShapeDtypeStruct((64, *x.shape), x.dtype), pop),
        jax.tree.map(lambda x: jax.ShapeDtypeStruct((64, *x.shape[1:]), x.dtype), big),
        spec, 11, size,
    ).compile().memory_analysis()  # fmt: skip
    per_row = (probe.argument_size_in_bytes + probe.output_size_in_bytes
               + probe.temp_size_in_bytes - probe.alias_size_in_bytes) / 64  # fmt: skip
    monkeypatch.setattr("twinjax.train.devices.device_memory_budget",
                        lambda device, fraction: int(100.5 * per_row))  # fmt: skip
    assert validation_rows(pop, big, spec, 11, size, 1000, 0.5) == 100
    assert validation_rows(pop, big, spec, 11, size, 64, 0.5) == 0  # small chunks: no probe at all
    assert rows_that_fit(lambda rows: None, 1000, fraction=0.5) == 0  # no analysis: all at once


@pytest.mark.integration
def test_blocks_of_arrays_sharded_over_devices_are_taken_on_one_device():
    from jax.sharding import NamedSharding, PartitionSpec

    from twinjax.train.devices import AXIS, individuals_mesh

    cohort = synthetic_cohort(jax.random.key(0), n_individuals=8, n_steps=60)
    arrays, _ = prepare(cohort)
    spec = TwinSpec.for_cohort(cohort, hidden=6, attention_dim=4)
    params = jax.vmap(lambda k: init_params(k, spec))(jax.random.split(jax.random.key(1), 8))
    size = max_segment(arrays.val)
    whole = val_nll(params, arrays, spec, 11, size)
    rows = NamedSharding(individuals_mesh(jax.devices()[:2]), PartitionSpec(AXIS))
    sharded = jax.device_put((params, arrays), rows)  # as the personal fit's chunks are
    blocks = val_nll_blocks(*sharded, spec, 11, size, 3)
    np.testing.assert_allclose(blocks, whole, rtol=1e-6)
    assert blocks.sharding.device_set == {jax.devices()[0]}
