"""What a run directory holds: a fingerprint of the settings and data that change results.

A checkpointed run may only be resumed by the same run. :func:`claim_run_dir` writes the
fingerprint next to the checkpoints on the first run and, on a rerun, compares: a difference
stops the run with a message that names each changed entry, unless the caller asked to start
over (then the old checkpoints are removed first).
"""

import hashlib
import json
import shutil
from collections.abc import Mapping
from pathlib import Path

import numpy as np

from twinjax.runtime.files import atomic_write_text

FINGERPRINT_FILE = "fingerprint.json"


class RunDirectoryError(RuntimeError):
    """A run directory holds checkpoints of a different run (settings or data differ)."""


def array_digest(*arrays) -> str:
    """SHA-256 of arrays' dtypes, shapes and bytes (host copies), as a hex string."""
    h = hashlib.sha256()
    for a in arrays:
        a = np.ascontiguousarray(np.asarray(a))
        h.update(f"{a.dtype.str}{a.shape}".encode())
        h.update(a.tobytes())
    return h.hexdigest()


def _flatten(tree: Mapping, prefix: str = "") -> dict:
    out = {}
    for k, v in tree.items():
        if isinstance(v, Mapping):
            out.update(_flatten(v, f"{prefix}{k}."))
        else:
            out[f"{prefix}{k}"] = v
    return out


def differences(old: Mapping, new: Mapping) -> list[str]:
    """``"key: old -> new"`` for every entry (dotted keys) that differs."""
    a, b = _flatten(old), _flatten(new)
    short = lambda v: f"{v[:12]}..." if isinstance(v, str) and len(v) == 64 else repr(v)
    return [
        f"{k}: {short(a.get(k, '<absent>'))} -> {short(b.get(k, '<absent>'))}"
        for k in sorted(set(a) | set(b))
        if a.get(k, "<absent>") != b.get(k, "<absent>")
    ]


def claim_run_dir(directory: Path, fingerprint: Mapping, *, resume: bool = True) -> bool:
    """Makes ``directory`` (a checkpoint directory) belong to the run described by ``fingerprint``.

    Args:
      directory: where the run's checkpoints live.
      fingerprint: JSON-able settings and data digests that change the run's results.
      resume: False removes checkpoints of an earlier run instead of comparing.

    Returns:
      True if checkpoints of this same run were found (the run will resume), else False.

    Raises:
      RunDirectoryError: the directory holds checkpoints of a run whose fingerprint differs (or
        has none), naming each difference and the two ways on.
    """
    directory = Path(directory)
    path = directory / FINGERPRINT_FILE
    fingerprint = json.loads(json.dumps(fingerprint, default=str))
    held = directory.exists() and any(p.name != FINGERPRINT_FILE for p in directory.iterdir())
    if held and resume:
        old = json.loads(path.read_text()) if path.exists() else {}
        diff = differences(old, fingerprint) if old else ["no fingerprint (an older twinjax)"]
        if diff:
            raise RunDirectoryError(
                f"{directory} holds checkpoints of a different run:\n  "
                + "\n  ".join(diff)
                + "\nRun in a new directory (hydra.run.dir=...) or start over in this one "
                "(train.resume=false deletes its checkpoints)."
            )
        return True
    if held:
        shutil.rmtree(directory)
    directory.mkdir(parents=True, exist_ok=True)
    atomic_write_text(path, json.dumps(fingerprint, indent=1, sort_keys=True))
    return False
