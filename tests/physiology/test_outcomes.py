"""Glycaemic outcomes: time in ranges by counting, and Kovatchev's risk indices vs simglucose."""

import jax
import numpy as np
import pytest

from twinjax.physiology.outcomes import outcomes, risk


def _traces(seed=0, shape=(3, 500)):
    """Glucose traces spanning 40-400 mg/dL, with readings exactly on the range edges."""
    rng = np.random.default_rng(seed)
    bg = np.exp(rng.uniform(np.log(40.0), np.log(400.0), shape))
    bg[..., :4] = [54.0, 70.0, 180.0, 112.5]
    return bg


def test_times_in_ranges_count_readings():
    bg = _traces()
    o = outcomes(bg)
    for i, row in enumerate(bg):
        assert float(o.tir[i]) == pytest.approx(np.mean((row >= 70) & (row <= 180)), abs=1e-6)
        assert float(o.below70[i]) == pytest.approx(np.mean(row < 70), abs=1e-6)
        assert float(o.below54[i]) == pytest.approx(np.mean(row < 54), abs=1e-6)
        assert float(o.above180[i]) == pytest.approx(np.mean(row > 180), abs=1e-6)
    total = o.tir + o.below70 + o.above180
    np.testing.assert_allclose(total, 1.0, atol=1e-6)  # the three ranges partition the readings


def test_risk_symmetrizes_at_112_5():
    """Kovatchev's design: f(112.5 mg/dL) = 0 and the whole clinical range 20-600 mg/dL maps onto
    -sqrt(10)..sqrt(10), so both ends carry the maximal risk 100 (to the constants' 3 digits)."""
    assert abs(float(risk(112.5))) < 1e-3
    assert float(risk(20.0)) == pytest.approx(-np.sqrt(10), rel=2e-3)
    assert float(risk(600.0)) == pytest.approx(np.sqrt(10), rel=2e-3)


def test_risk_indices_match_simglucose():
    """simglucose's risk_index on one reading at a time (how its environment records LBGI/HBGI)
    averaged over the trace is Kovatchev's LBGI/HBGI; on the whole window it averages over the
    low (high) readings only, i.e. ours divided by their fraction. float32 vs float64: 1e-5."""
    pytest.importorskip("simglucose")
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # gym's import-time deprecations, not ours
        from simglucose.analysis.risk import risk_index

    bg = _traces(1)
    o = outcomes(bg)
    for i, row in enumerate(bg):
        per_reading = np.array([risk_index([b], 1)[:2] for b in row])
        np.testing.assert_allclose([o.lbgi[i], o.hbgi[i]], per_reading.mean(0), rtol=1e-5)
        lbgi, hbgi, _ = risk_index(row, len(row))
        f = 1.509 * (np.log(row) ** 1.084 - 5.381)
        np.testing.assert_allclose(o.lbgi[i], lbgi * np.mean(f < 0), rtol=1e-5)
        np.testing.assert_allclose(o.hbgi[i], hbgi * np.mean(f > 0), rtol=1e-5)


def test_outcomes_batch_jit_and_errors():
    bg = _traces(2, (2, 3, 50))
    batched = jax.jit(outcomes)(bg)
    assert batched.tir.shape == (2, 3)
    np.testing.assert_allclose(batched.lbgi[1, 2], outcomes(bg[1, 2]).lbgi, rtol=1e-6)
    assert float(outcomes(np.array([100, 200])).tir) == 0.5  # integer readings work
    with pytest.raises(ValueError, match="at least one reading"):
        outcomes(np.zeros((3, 0)))
