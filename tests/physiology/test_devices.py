"""Sensor noise, pump discretization, controller and meal scenarios against simglucose's rules."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from twinjax.physiology import load_patients, load_settings
from twinjax.physiology.controller import basal_bolus
from twinjax.physiology.pump import Pump
from twinjax.physiology.scenario import DailyMeals, meal_minutes, random_meals
from twinjax.physiology.sensor import Sensor, _spline_matrix, cgm_noise, noise_from_normals


def test_spline_block_reproduces_cubics():
    """A not-a-knot cubic spline is exact on cubic polynomials (no simglucose needed)."""
    knots = np.arange(11) * 15.0
    cubic = lambda t: 0.3 - 0.02 * t + 1e-3 * t**2 - 4e-6 * t**3
    m = _spline_matrix(3.0)
    np.testing.assert_allclose(m @ cubic(knots), cubic(np.arange(1, 51) * 3.0), atol=1e-9)


@pytest.mark.parametrize("name", ["Dexcom", "GuardianRT", "Navigator"])
def test_noise_equals_simglucose_for_the_same_draws(name):
    pytest.importorskip("simglucose")
    from simglucose.sensor.noise_gen import CGMNoise

    from twinjax.physiology.params import read_table

    params = read_table("sensor_params").set_index("Name").loc[name]
    theirs = CGMNoise(params, seed=7)
    sensor = Sensor.named(name)
    n = 3 * sensor.per_block() + 5  # crosses block boundaries
    expected = np.array([next(theirs) for _ in range(n)])
    z = np.random.RandomState(7).randn(1 + 10 * 4)
    np.testing.assert_allclose(noise_from_normals(z, sensor, n), expected, atol=1e-4)


def test_noise_is_autocorrelated_and_keyed():
    sensor = Sensor()
    a = np.asarray(cgm_noise(jax.random.key(1), sensor, 4000))
    assert np.array_equal(a, np.asarray(cgm_noise(jax.random.key(1), sensor, 4000)))
    assert not np.allclose(a, np.asarray(cgm_noise(jax.random.key(2), sensor, 4000)))
    lag1 = np.corrcoef(a[:-1], a[1:])[0, 1]
    assert lag1 > 0.9  # 3-min samples of a spline through 15-min AR(1) values
    assert 5.0 < a.std() < 30.0  # the Johnson S_U transform's scale (lambda = 16 mg/dL)


def test_pump_matches_simglucose_rounding():
    pump = Pump.named("Insulet")
    rates = np.array([0.0, 1e-6, 0.0237583, 1.85, 12.34567, 40.0, -1.0])
    ours = np.asarray(pump.bolus(rates))
    expected = np.clip(np.round(rates * 6000 / 0.05) * 0.05 / 6000, 0.0, 30.0)
    np.testing.assert_allclose(ours, expected, rtol=1e-6, atol=1e-9)
    with pytest.raises(ValueError, match="unknown pump"):
        Pump.named("Omnipod")


def test_basal_bolus_formula():
    p, st = load_patients(["adult#004"]), load_settings(["adult#004"])
    p1, st1 = jax.tree.map(lambda a: a[0], (p, st))
    # 60 g over a 3-minute period (20 g/min) at 200 mg/dL: 60/CR + (200-140)/CF units over 3 min
    act = basal_bolus(200.0, 20.0, p1, st1, sample_time=3)
    expected = (60.0 / 16.0 + 60.0 / 42.6533755134) / 3.0
    assert float(act.bolus) == pytest.approx(expected, rel=1e-5)
    assert float(basal_bolus(150.0, 20.0, p1, st1, sample_time=3).bolus) == pytest.approx(
        60.0 / 16.0 / 3.0, rel=1e-5
    )  # no correction at 150
    assert float(basal_bolus(300.0, 0.0, p1, st1, sample_time=3).bolus) == 0.0


def test_random_meals_follow_simglucose_distribution():
    """4000 days: take rates within 4 binomial SDs, times inside the windows, whole grams."""
    m = random_meals(jax.random.key(3), 4000)
    taken = np.asarray(m.taken)
    prob = np.array([0.95, 0.3, 0.95, 0.3, 0.95, 0.3])
    assert np.all(np.abs(taken.mean(0) - prob) < 4 * np.sqrt(prob * (1 - prob) / 4000))
    t = np.asarray(m.time)
    assert np.all(
        (t >= np.array([5, 9, 10, 14, 16, 20]) * 60) & (t <= np.array([9, 10, 14, 16, 20, 23]) * 60)
    )
    a = np.asarray(m.amount)
    assert np.array_equal(a, np.round(a)) and a.min() >= 0
    assert abs(a[:, 4].mean() - 80.0) < 4 * 10.0 / np.sqrt(4000)


def test_meals_at_one_minute_keep_the_first():
    meals = DailyMeals(
        time=jnp.array([[420.0, 540.0, 720.0, 900.0, 1080.0, 1290.0]]).at[0, 0].set(540.0),
        amount=jnp.array([[45.0, 10.0, 70.0, 10.0, 80.0, 10.0]]),
        taken=jnp.array([[True, True, True, False, True, True]]),
    )
    grams = np.asarray(meal_minutes(meals))
    assert grams[540] == 45.0 and grams[900] == 0.0 and grams.sum() == 45 + 70 + 80 + 10
