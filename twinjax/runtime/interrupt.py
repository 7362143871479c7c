"""Ctrl-C and SIGTERM (what SLURM sends before a job's time runs out) stop a run cleanly.

Inside a checkpointed loop (:func:`twinjax.runtime.run_loop`) the first signal is only noted: the
loop finishes its step, writes a checkpoint and raises :class:`Interrupted`, and a rerun of the
same command resumes from there. Outside a loop (reading data, evaluating, writing reports) the
signal raises :class:`Interrupted` at once; nothing of the run is left half written, since files
are replaced whole. A second Ctrl-C while a loop is finishing its step stops it at once.

The app turns :class:`Interrupted` into one line and exit status 128 + the signal's number
(130 for SIGINT, 143 for SIGTERM), as a shell reports a process stopped by that signal.
"""

from __future__ import annotations

import contextlib
import signal
import threading
from collections.abc import Iterator

SIGNALS = (signal.SIGINT, signal.SIGTERM)


class Interrupted(KeyboardInterrupt):
    """A run stopped on SIGINT/SIGTERM. ``signum``: the signal; ``checkpoint``: where the loop
    saved its state (None outside a loop, or for a loop that keeps no checkpoints)."""

    def __init__(self, signum: int, where: str = "", checkpoint: str | None = None):
        self.signum, self.where, self.checkpoint = signum, where, checkpoint
        name = signal.Signals(signum).name
        text = f"stopped by {name}{f' {where}' if where else ''}"
        if checkpoint:
            text += f"; checkpoint saved in {checkpoint}: rerun the same command to resume"
        else:
            text += "; no checkpoint yet: rerun the same command to start again"
        super().__init__(text)

    @property
    def exit_status(self) -> int:
        return 128 + int(self.signum)


_loops = 0  # checkpointed loops running now (signals are deferred to their next step)
_pending: int | None = None


def _handler(signum, frame) -> None:
    global _pending
    if _loops and _pending is None:
        _pending = signum
        return
    raise Interrupted(signum)


def pending() -> int | None:
    """The signal noted during a loop's step (None if none)."""
    return _pending


@contextlib.contextmanager
def handled() -> Iterator[None]:
    """SIGINT and SIGTERM raise :class:`Interrupted` (deferred inside :func:`deferred`) while the
    block runs; the previous handlers come back after it. Only the main thread can install
    handlers: elsewhere the block runs unchanged."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = {s: signal.signal(s, _handler) for s in SIGNALS}
    try:
        yield
    finally:
        for s, h in previous.items():
            signal.signal(s, h)


@contextlib.contextmanager
def deferred() -> Iterator[None]:
    """A checkpointed loop's body: a signal is noted (:func:`pending`), not raised, so the loop
    can stop at the end of its step with a checkpoint. Installs the handlers if the caller has
    not (library use: Ctrl-C in a notebook also stops a loop at a step with a checkpoint)."""
    global _loops, _pending
    with handled():
        _loops += 1
        try:
            yield
        finally:
            _loops -= 1
            if not _loops:
                _pending = None
