"""Run-time utilities every training loop shares: the checkpointed, resumable loop."""

from twinjax.runtime.loop import TrainingDiverged, checkpoint_manager, restore_latest, run_loop

__all__ = ["TrainingDiverged", "checkpoint_manager", "restore_latest", "run_loop"]
