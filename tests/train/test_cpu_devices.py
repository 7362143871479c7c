"""``use_cpu_devices``: one CPU device per core unless the user chose otherwise.

Each case runs in a fresh process (the device count is fixed once JAX starts).
"""

import os
import subprocess
import sys

import pytest
from conftest import ROOT

_SHOW = """
import os, sys
from twinjax.train.devices import training_devices, use_cpu_devices
use_cpu_devices(None if sys.argv[1] == "none" else int(sys.argv[1]))
import jax
print(jax.local_device_count(), len(training_devices()), os.cpu_count())
"""


def _devices(arg: str, xla_flags: str = "") -> tuple[int, int, int]:
    env = {**os.environ, "XLA_FLAGS": xla_flags, "JAX_PLATFORMS": "cpu"}
    proc = subprocess.run(
        [sys.executable, "-c", _SHOW, arg], cwd=ROOT, env=env, capture_output=True, text=True,
        timeout=120,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-2000:]
    return tuple(int(v) for v in proc.stdout.split()[-3:])


def test_one_device_per_core_by_default():
    made, used, cores = _devices("none")
    assert made == used == cores


@pytest.mark.integration
def test_a_count_is_made_and_training_uses_at_most_one_per_core():
    made, used, cores = _devices("3")
    assert made == 3 and used == min(3, cores)
    assert _devices("1")[:2] == (1, 1)


def test_xla_flags_device_count_is_kept():
    made, used, cores = _devices("none", "--xla_force_host_platform_device_count=5")
    assert made == 5 and used == min(5, cores)


def test_a_count_below_one_is_refused():
    from twinjax.train.devices import use_cpu_devices

    with pytest.raises(ValueError, match="cpu_devices=0"):
        use_cpu_devices(0)
