"""Run-time utilities every training loop shares: the checkpointed, resumable loop."""

from twinjax.runtime.fingerprint import RunDirectoryError, array_digest, claim_run_dir
from twinjax.runtime.loop import TrainingDiverged, checkpoint_manager, restore_latest, run_loop

__all__ = [
    "RunDirectoryError",
    "TrainingDiverged",
    "array_digest",
    "checkpoint_manager",
    "claim_run_dir",
    "restore_latest",
    "run_loop",
]
