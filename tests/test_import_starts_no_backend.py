"""Importing twinjax runs no JAX operation.

JAX settings that fix the devices (``jax.distributed.initialize`` for a multi-host run,
``jax_num_cpu_devices``) must come before JAX's first operation; a module-level ``jnp`` constant
would start the backend at import and make them fail. Every module is imported in one fresh
process and the backend must still be unstarted.
"""

import subprocess
import sys

from conftest import ROOT

_CHECK = """
import importlib, pkgutil
import jax
from jax._src import xla_bridge
import twinjax
started = []
for m in pkgutil.walk_packages(twinjax.__path__, "twinjax."):
    if m.name.endswith("__main__"):
        continue
    importlib.import_module(m.name)
    if xla_bridge.backends_are_initialized():
        started.append(m.name)
        break
print(started[0] if started else "none")
"""


def test_importing_every_module_starts_no_jax_backend():
    proc = subprocess.run(
        [sys.executable, "-c", _CHECK], cwd=ROOT, capture_output=True, text=True, timeout=300
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    first = proc.stdout.strip().splitlines()[-1]
    assert first == "none", f"importing {first} started a JAX backend (a module-level jnp op?)"
