"""Test set-up (must run before JAX starts): 8 virtual CPU devices for sharding tests, and a
persistent compilation cache shared by the test processes and the app runs they start, so a
program compiled once (e.g. the twin's training step) is not compiled again by every subprocess."""

import os
import tempfile

os.environ.setdefault("XLA_FLAGS", "--xla_force_host_platform_device_count=8")
os.environ.setdefault("JAX_PLATFORMS", "cpu")
os.environ.setdefault("MPLBACKEND", "Agg")
os.environ.setdefault(
    "JAX_COMPILATION_CACHE_DIR", os.path.join(tempfile.gettempdir(), "twinjax-test-jax-cache")
)
os.environ.setdefault("JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS", "0.2")
