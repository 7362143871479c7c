"""R-hat / bulk ESS on draws with known behaviour; the warning on bad diagnostics."""

import numpy as np
import pytest

from twinjax.bayes import DiagnosticsWarning, diagnose, ess_bulk, rank_rhat


def _ar1(rng, chains, draws, rho):
    x = np.zeros((chains, draws))
    e = rng.normal(size=(chains, draws)) * np.sqrt(1 - rho**2)
    x[:, 0] = rng.normal(size=chains)
    for t in range(1, draws):
        x[:, t] = rho * x[:, t - 1] + e[:, t]
    return x


def test_iid_chains_pass_and_ess_near_draw_count():
    x = np.random.default_rng(0).normal(size=(4, 1000))
    assert rank_rhat(x) < 1.01
    assert 3200 < ess_bulk(x) < 4800


def test_ess_of_ar1_matches_theory():
    rho = 0.8  # integrated autocorrelation time (1 + rho) / (1 - rho) = 9
    x = _ar1(np.random.default_rng(1), 4, 5000, rho)
    assert ess_bulk(x) == pytest.approx(4 * 5000 / 9, rel=0.2)


def test_shifted_chain_is_flagged_with_warning():
    x = np.random.default_rng(2).normal(size=(4, 500))
    x[0] += 1.0
    assert rank_rhat(x) > 1.05
    with pytest.warns(DiagnosticsWarning, match="R-hat"):
        d = diagnose({"a": x}, num_divergences=3)
    assert d.num_divergences == 3 and d.r_hat["a"] > 1.05


def test_scale_difference_caught_by_folded_rhat():
    x = np.random.default_rng(3).normal(size=(4, 1000))
    x[0] *= 3.0  # same location, different spread: bulk R-hat misses it, folded catches it
    assert rank_rhat(x) > 1.01
