"""Runs simglucose itself (an optional extra: ``pip install twinjax[glucose]``) for comparison.

:func:`simglucose_bb` runs one patient in simglucose's own ``T1DSimEnv`` with its
``BBController``, sensor and pump on a fixed meal scenario, and records glucose and insulin at
every minute (simglucose's history keeps only per-period means). ``noise_free=True`` gives the
sensor zero noise (``xi = lambda = 0`` in its Johnson transform), so the loop is deterministic
and the JAX simulator must reproduce it exactly.
"""

import time
from datetime import datetime, timedelta
from typing import NamedTuple

import numpy as np


class Reference(NamedTuple):
    """simglucose's run: per-minute glucose and insulin, per-period CGM, and its wall time."""

    bg: np.ndarray  # glucose after each minute (mg/dL)
    insulin: np.ndarray  # insulin delivered at each minute (U/min)
    cgm: np.ndarray  # mean sensor value reported after each period (simglucose's CGM history)
    seconds: float  # wall time of the simulation loop


def simglucose_bb(
    name: str,
    meals: np.ndarray,
    *,
    sensor: str = "Dexcom",
    pump: str = "Insulet",
    noise_free: bool = True,
    seed: int = 1,
    controller=None,
) -> Reference:
    """simglucose's basal-bolus loop for patient ``name``; ``meals[t]`` grams announced at minute t.

    ``controller``: any simglucose ``Controller`` to run instead of its ``BBController`` (e.g.
    :class:`twinjax.glucose.closed_loop.TwinAdvisorController`); it is reset first.
    """
    from simglucose.actuator.pump import InsulinPump
    from simglucose.controller.basal_bolus_ctrller import BBController
    from simglucose.patient.t1dpatient import T1DPatient
    from simglucose.sensor.cgm import CGMSensor
    from simglucose.simulation.env import T1DSimEnv
    from simglucose.simulation.scenario import CustomScenario

    class _Recorded(T1DPatient):
        def step(self, action):
            super().step(action)
            self.record.append((self.observation.Gsub, action.insulin))

    patient = _Recorded.withName(name)
    patient.record = []
    cgm_sensor = CGMSensor.withName(sensor, seed=seed)
    if noise_free:
        params = cgm_sensor._params.copy()
        params["xi"], params["lambda"] = 0.0, 0.0
        cgm_sensor = CGMSensor(params, seed=seed)
    start = datetime(2026, 1, 1)
    plan = [(timedelta(minutes=int(t)), float(meals[t])) for t in np.flatnonzero(meals)]
    env = T1DSimEnv(patient, cgm_sensor, InsulinPump.withName(pump), CustomScenario(start, plan))
    controller = BBController() if controller is None else controller
    controller.reset()
    tic = time.perf_counter()
    obs, reward, done, info = env.reset()
    patient.record = []
    steps = len(meals) // int(env.sample_time)
    for _ in range(steps):
        action = controller.policy(obs, reward, done, **info)
        obs, reward, done, info = env.step(action)
    seconds = time.perf_counter() - tic
    bg, insulin = map(np.asarray, zip(*patient.record, strict=True))
    return Reference(bg, insulin, np.asarray(env.CGM_hist[1:]), seconds)
