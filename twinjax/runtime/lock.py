"""One run per directory: an advisory lock taken before a run writes anything of its own.

:func:`run_lock` holds ``run.lock`` in the run directory for the life of the run: an exclusive
``flock`` on the file (the kernel drops it when the holder dies, however it dies) and, inside it,
who holds it (pid, host, start time) for the message a second run gets. A lock file left by a
dead process is taken over, and the log says whose it was.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import json
import logging
import os
import socket
import time
from collections.abc import Iterator
from pathlib import Path

from twinjax.runtime.files import write_errors
from twinjax.runtime.fingerprint import RunDirectoryError

log = logging.getLogger(__name__)

LOCK_FILE = "run.lock"


class RunLocked(RunDirectoryError):
    """Another live run holds the run directory."""


def _holder(path: Path) -> dict:
    try:
        return json.loads(path.read_text() or "{}")
    except (OSError, ValueError):
        return {}


def _describe(holder: dict) -> str:
    if not holder:
        return "another process"
    started = holder.get("started")
    when = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(started)) if started else "?"
    return f"pid {holder.get('pid', '?')} on {holder.get('host', '?')} (since {when})"


def _acquire(path: Path) -> int:
    """An open descriptor of ``path`` holding its exclusive flock (the file as it is on disk
    now: one removed by its previous holder between our open and our lock is opened again)."""
    while True:
        with write_errors(path):  # a read-only or full run directory: one RunWriteError line
            fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as e:
            os.close(fd)
            if e.errno in (errno.EAGAIN, errno.EACCES, errno.EWOULDBLOCK):
                raise RunLocked(
                    f"{path.parent} is in use by another run ({_describe(_holder(path))}); wait "
                    f"for it to end or choose another directory (hydra.run.dir=...)"
                ) from None
            raise
        try:
            same = os.stat(path).st_ino == os.fstat(fd).st_ino
        except FileNotFoundError:
            same = False
        if same:
            return fd
        os.close(fd)


@contextlib.contextmanager
def run_lock(directory: str | Path) -> Iterator[Path]:
    """Holds ``directory/run.lock`` while the block runs (the directory is created).

    Raises:
      RunLocked: a live process holds it; the message names its pid, host and start time.
    """
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / LOCK_FILE
    fd = _acquire(path)
    try:
        stale = _holder(path)
        if stale:  # we hold the flock, so its writer is gone
            log.warning("took over the lock of a run that ended without releasing it: %s",
                        _describe(stale))  # fmt: skip
        me = {"pid": os.getpid(), "host": socket.gethostname(), "started": time.time()}
        with write_errors(path):
            os.ftruncate(fd, 0)
            os.pwrite(fd, json.dumps(me).encode(), 0)
        yield path
    finally:
        with contextlib.suppress(OSError):
            path.unlink()
        os.close(fd)
