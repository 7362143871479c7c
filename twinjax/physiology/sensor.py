"""CGM sensor: simglucose's noise model (AR(1) in a Johnson S_U transform, spline-upsampled).

simglucose (``sensor/noise_gen.py``, after Breton and Kovatchev 2008) draws a noise value every
15 minutes: ``e_0 = z_0``, ``e_k = PACF (e_{k-1} + z_k)`` with ``z_k ~ N(0, 1)``, transformed by
``eps = xi + lambda sinh((e - gamma) / delta)``. It interpolates blocks of ten 15-minute values
(plus the last value of the previous block, so the sequence is continuous) by a not-a-knot cubic
spline onto the sensor's sample grid. The spline is linear in the values, so here it is a fixed
matrix applied to every block: the same numbers as simglucose for the same normal draws. A reading
is ``clip(BG + eps, min, max)`` every ``sample_time`` minutes.
"""

from dataclasses import dataclass

import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, ArrayLike, Float, Key
from scipy.interpolate import make_interp_spline

from twinjax.physiology.params import device_row

_BLOCK = 10  # 15-minute values per spline block (simglucose's CGMNoise.PRECOMPUTE)
_NOISE_STEP = 15.0  # minutes between the AR(1) values


@dataclass(frozen=True)
class Sensor:
    """A CGM sensor's noise and range (a row of simglucose's sensor_params.csv)."""

    name: str = "Dexcom"
    pacf: float = 0.7
    gamma: float = -0.5444
    lam: float = 15.9574
    delta: float = 1.6898
    xi: float = -5.47
    sample_time: int = 3  # minutes
    lo: float = 39.0
    hi: float = 600.0

    @classmethod
    def named(cls, name: str) -> "Sensor":
        """The sensor ``name`` (Dexcom, GuardianRT or Navigator) from sensor_params.csv."""
        r = device_row("sensor", name)
        return cls(
            name, float(r.PACF), float(r.gamma), float(r["lambda"]), float(r.delta),
            float(r.xi), int(r.sample_time), float(r["min"]), float(r["max"]),
        )  # fmt: skip

    def per_block(self) -> int:
        """Sensor samples per spline block of 150 minutes."""
        return int(np.floor(_BLOCK * _NOISE_STEP / self.sample_time))


def _spline_matrix(sample_time: int | float) -> np.ndarray:
    """Rows map a block's 11 values (15 min apart) to the samples after its first point."""
    knots = np.arange(_BLOCK + 1) * _NOISE_STEP
    n = int(np.floor(_BLOCK * _NOISE_STEP / sample_time)) + 1
    at = np.arange(n) * sample_time
    return make_interp_spline(knots, np.eye(_BLOCK + 1), k=3)(at)[1:]


def noise_from_normals(z: Float[ArrayLike, " draws"], sensor: Sensor, n: int) -> Float[Array, " n"]:
    """The first ``n`` sensor-noise samples (mg/dL) given the standard normal draws ``z``.

    ``z`` needs at least ``1 + 10 ceil(n / per_block)`` values; simglucose's ``CGMNoise`` with
    ``numpy.random.RandomState(seed).randn()`` draws gives the same sequence.
    """
    blocks = -(-n // sensor.per_block())
    need = 1 + _BLOCK * blocks
    z = jnp.asarray(z)
    if z.shape[0] < need:
        raise ValueError(f"{n} samples need {need} normal draws, got {z.shape[0]}")

    def _step(e, zk):
        e = sensor.pacf * (e + zk)
        return e, e

    _, rest = jax.lax.scan(_step, z[0], z[1:need])
    e = jnp.concatenate([z[:1], rest])
    eps = sensor.xi + sensor.lam * jnp.sinh((e - sensor.gamma) / sensor.delta)
    idx = np.arange(blocks)[:, None] * _BLOCK + np.arange(_BLOCK + 1)[None, :]
    m = jnp.asarray(_spline_matrix(sensor.sample_time), eps.dtype)
    return (eps[idx] @ m.T).reshape(-1)[:n]


def cgm_noise(key: Key[Array, ""], sensor: Sensor, n: int) -> Float[Array, " n"]:
    """``n`` consecutive noise samples of a fresh sensor, from the PRNG ``key``.

    Example:
        >>> noise = cgm_noise(jax.random.key(0), Sensor(), 480)  # one day of Dexcom samples
        >>> noise.shape
        (480,)
    """
    draws = 1 + _BLOCK * -(-n // sensor.per_block())
    return noise_from_normals(jax.random.normal(key, (draws,)), sensor, n)


def measure(
    bg: Float[ArrayLike, "*time"], noise: Float[ArrayLike, "*time"], sensor: Sensor
) -> Float[Array, "*time"]:
    """CGM readings: glucose plus noise, clipped to the sensor's range."""
    return jnp.clip(jnp.asarray(bg) + noise, sensor.lo, sensor.hi)
