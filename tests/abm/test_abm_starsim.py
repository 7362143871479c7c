"""twinjax vs starsim on SIR over starsim's dynamic RandomNet: mean attack rates over 20 seeds.

Slow (about a minute), run with ``pytest -m slow tests/abm/test_abm_starsim.py``; needs the
``bench`` extra (starsim). The parameter mapping is documented in ``twinjax/abm/peers.py``.
"""

import jax
import numpy as np
import pytest

from twinjax.abm.peers import SIRNetSpec, starsim_attack_rate, starsim_sim, twinjax_attack_rates

pytestmark = pytest.mark.slow


@pytest.mark.parametrize("beta", [0.035, 0.06])
def test_attack_rates_match_starsim_over_20_seeds(beta):
    pytest.importorskip("starsim")
    spec = SIRNetSpec(n_agents=20_000, n_steps=150, beta=beta)
    seeds = range(20)
    ours = np.asarray(twinjax_attack_rates(spec, jax.random.split(jax.random.key(0), 20)))
    theirs = []
    for seed in seeds:
        sim = starsim_sim(spec, seed + 1)
        sim.run()
        theirs.append(starsim_attack_rate(sim))
    theirs = np.asarray(theirs)
    print(
        f"beta={beta}: twinjax {ours.mean():.4f}+-{ours.std():.4f}, "
        f"starsim {theirs.mean():.4f}+-{theirs.std():.4f}"
    )
    assert abs(ours.mean() - theirs.mean()) < 0.02
