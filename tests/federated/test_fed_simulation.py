"""Simulated Byzantine clients: the wrapper corrupts the attackers' updates and nothing else."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from twinjax import federated as fl


@pytest.mark.integration
@pytest.mark.parametrize("attack", ["sign_flip", "scale", "nan"])
def test_byzantine_wrapper_corrupts_only_attackers(attack):
    data, _ = fl.synthetic_alpha_beta(0, num_clients=4, dim=3, num_classes=2, max_samples=20)
    honest = fl.scaffold_update(fl.logistic_loss, learning_rate=0.1, batch_size=8, epochs=1)
    evil = fl.byzantine_clients(honest, attackers=2, attack=attack, scale=3.0)
    params = fl.logistic_init(3, 2)
    shared, state = honest.init(params)
    for i in range(4):
        task = fl.ClientTask(data.samples, data.offset[i], data.count[i], jnp.int32(1),
                             jnp.int32(i))  # fmt: skip
        key = jax.random.key(i)
        want = honest.update(params, shared, state, task, key)
        got = evil.update(params, shared, state, task, key)
        for a, b in zip(jax.tree.leaves(got.state), jax.tree.leaves(want.state), strict=True):
            np.testing.assert_array_equal(a, b)  # the attacker's own state stays honest
        for g, w in zip(jax.tree.leaves(got.delta), jax.tree.leaves(want.delta), strict=True):
            g, w = np.asarray(g), np.asarray(w)
            assert np.any(w != 0)
            if i >= 2:
                np.testing.assert_array_equal(g, w)
            elif attack == "nan":
                assert np.all(np.isnan(g))
            else:
                np.testing.assert_allclose(g, (-3.0 if attack == "sign_flip" else 3.0) * w)
