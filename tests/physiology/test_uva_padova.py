"""The JAX UVa/Padova model: steady state, cohort vmap, gradients, and agreement with simglucose."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from twinjax.physiology import load_patients, load_settings, patient_names, simulate
from twinjax.physiology.closed_loop import run
from twinjax.physiology.controller import basal_bolus, steady_basal
from twinjax.physiology.params import _BUNDLED, params_dir, read_table
from twinjax.physiology.pump import Pump
from twinjax.physiology.sensor import Sensor
from twinjax.physiology.uva_padova import dynamics, glucose, unpack

one = lambda tree, i=0: jax.tree.map(lambda a: a[i], tree)


def test_thirty_patients_in_table_order():
    names = patient_names()
    assert len(names) == 30 and names[0] == "adolescent#001" and names[-1] == "child#010"
    with pytest.raises(ValueError, match="unknown patient"):
        load_patients(["adult#011"])


def test_bundled_tables_are_simglucoses():
    """The copy shipped for installs without simglucose holds the same numbers as simglucose."""
    if params_dir() == _BUNDLED:
        pytest.skip("simglucose is not installed")
    for name in ("vpatient_params", "Quest", "sensor_params", "pump_params"):
        ours, theirs = read_table(name, source=_BUNDLED), read_table(name)
        assert ours.equals(theirs), name


def test_initial_state_is_at_rest_on_steady_basal():
    """x0 is each patient's steady state under basal u2ss: dx/dt(x0) = 0 up to the table's digits.

    The tolerance is relative to each compartment's own turnover (|rate terms| ~ 1e-2..10), far
    below any wrong sign or rate, which moves dx/dt by the size of the term itself.
    """
    p = load_patients()
    insulin = steady_basal(p) * 6000.0 / p.get("BW")  # pmol/kg/min
    q = jax.vmap(unpack)(p.theta)
    dx = jax.vmap(dynamics)(p.x0, jnp.zeros(30), insulin, jnp.zeros(30), q)
    scale = 1.0 + jnp.abs(p.x0) * 0.01
    assert float(jnp.max(jnp.abs(dx) / scale)) < 1e-3


@pytest.mark.integration
def test_cohort_vmap_equals_one_patient_at_a_time():
    p = load_patients(["adolescent#003", "child#007"])
    meals = jnp.zeros(120).at[10].set(30.0)
    insulin = jnp.stack([jnp.full(120, b) for b in steady_basal(p)]).at[:, 12].add(0.5)
    sim = lambda *args: simulate(*args, substeps=1)
    batched, _ = jax.jit(jax.vmap(sim))(p, jnp.stack([meals, meals]), insulin)
    for i in range(2):
        single, _ = sim(one(p, i), meals, insulin[i])
        np.testing.assert_allclose(batched[i], single, rtol=1e-5)
    assert float(batched[:, -1].min()) > float(batched[:, 0].max())  # the meal raised glucose


@pytest.mark.integration
def test_gradients_match_finite_differences():
    """d(mean glucose)/d(meal grams, log kabs) by autodiff agrees with central differences of the
    same compiled function to 2% (float32 rounding in the differences is ~1e-4 of the change)."""
    p = one(load_patients(["adult#002"]))
    ins = jnp.full(120, steady_basal(p))

    def mean_bg(grams, log_kabs):
        theta = p.theta.at[1].set(jnp.exp(log_kabs))
        meals = jnp.zeros(120).at[5].set(grams)
        return simulate(p._replace(theta=theta), meals, ins, substeps=1)[0].mean()

    f = jax.jit(jax.value_and_grad(mean_bg, argnums=(0, 1)))
    lk = float(jnp.log(p.get("kabs")))
    # 47 g: not a multiple of the 5 g/min eating rate, where the meal's duration has a kink
    _, (g_meal, g_kabs) = f(47.0, lk)
    fd_meal = (f(48.0, lk)[0] - f(46.0, lk)[0]) / 2.0
    fd_kabs = (f(47.0, lk + 0.05)[0] - f(47.0, lk - 0.05)[0]) / 0.1
    assert float(g_meal) > 0 and float(g_kabs) > 0
    np.testing.assert_allclose(g_meal, fd_meal, rtol=2e-2)
    np.testing.assert_allclose(g_kabs, fd_kabs, rtol=2e-2)


def test_closed_loop_rejects_bad_lengths():
    p, st = one(load_patients(["adult#001"])), one(load_settings(["adult#001"]))
    pol = lambda cgm, meal: basal_bolus(cgm, meal, p, st, sample_time=3)
    with pytest.raises(ValueError, match="whole number"):
        run(p, jnp.zeros(10), jnp.zeros(4), pol, sensor=Sensor(), pump=Pump())
    with pytest.raises(ValueError, match="noise needs 5"):
        run(p, jnp.zeros(12), jnp.zeros(4), pol, sensor=Sensor(), pump=Pump())


@pytest.mark.parametrize("name", ["adolescent#007", "child#002"])
def test_basal_bolus_loop_matches_simglucose(name):
    """simglucose's own env + BBController + pump (noise-free sensor) vs ours, 3 simulated hours
    with a meal at 30 min (bolus and meal absorption both active). Tolerance 0.05 mg/dL RMS and
    0.2 max: float32 rounding gives ~1e-3 (the 30-patient table in scripts/bench_glucose.py); a
    wrong rate, a minute's shift in the input timing or a missed bolus moves glucose by mg/dL."""
    pytest.importorskip("simglucose")
    from twinjax.physiology.reference import simglucose_bb

    meals = np.zeros(180)
    meals[30] = 45.0
    ref = simglucose_bb(name, meals)
    p, st = one(load_patients([name])), one(load_settings([name]))
    sensor = Sensor.named("Dexcom")
    pol = lambda cgm, meal: basal_bolus(cgm, meal, p, st, sample_time=sensor.sample_time)
    trace = run(p, meals, np.zeros(61), pol, sensor=sensor, pump=Pump.named("Insulet"))
    diff = np.asarray(trace.bg) - ref.bg
    assert np.sqrt(np.mean(diff**2)) < 0.05 and np.abs(diff).max() < 0.2
    np.testing.assert_allclose(trace.insulin, ref.insulin, atol=1e-6)
    np.testing.assert_allclose(trace.reported_cgm, ref.cgm, atol=0.2)
    assert ref.bg.max() - ref.bg.min() > 20.0  # the comparison covers a real excursion
    assert float(glucose(p.x0, p)) == pytest.approx(ref.bg[0], abs=1.0)


def test_the_pre_0_2_3_meal_bookkeeping():
    """compat="simglucose<0.2.3" (Dbar in mg plus grams) only changes how a meal empties: on
    basal alone the two bookkeepings agree exactly; after a 70 g meal the old one's Dbar is
    about a thousand times too small, so gastric emptying runs at kmax and glucose peaks
    higher (by more than 20 mg/dL for adult#001: scripts/glucose_compat.py measures 25-120 over
    the 30 patients, and the old bookkeeping against simglucose 0.2.2's own patient). An
    unknown compat is refused, naming the choices."""
    p = jax.tree.map(lambda a: a[0], load_patients(["adult#001"]))
    basal = p.get("u2ss") * p.get("BW") / 6000.0
    run = jax.jit(lambda meals, compat: simulate(p, meals, jnp.full(240, basal), compat=compat)[0],
                  static_argnames="compat")  # fmt: skip
    fasting = jnp.zeros(240)
    np.testing.assert_array_equal(run(fasting, "simglucose"), run(fasting, "simglucose<0.2.3"))
    meal = fasting.at[10].set(70.0)
    new, old = run(meal, "simglucose"), run(meal, "simglucose<0.2.3")
    assert float(old.max()) > float(new.max()) + 20.0
    with pytest.raises(ValueError, match="compat must be one of"):
        run(meal, "simglucose-0.2.2")
