"""Checkpoints that fail loudly and restore carefully.

orbax reports a refused write as an ``OSError`` (creating a step directory) or as a
``ValueError`` from tensorstore (``OUT_OF_RANGE: Error writing ... File too large
[os_error_code='27']``, raised by the save after it or by ``wait_until_finished``);
:class:`CheckedManager` turns both into :class:`~twinjax.runtime.files.RunWriteError` naming the
file, the reason and the last complete checkpoint. On resume, :func:`restore_newest` takes the
newest checkpoint that reads back: a damaged one (a truncated or corrupted file) is set aside as
``<step>.damaged`` with a warning, and the one before it is used.
"""

import contextlib
import logging
import re
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import orbax.checkpoint as ocp

from twinjax.runtime.files import WRITE_ERRNOS, RunWriteError
from twinjax.runtime.fingerprint import RunDirectoryError

log = logging.getLogger(__name__)

_OS_ERROR_CODE = re.compile(r"os_error_code='?(\d+)")
_QUOTED_PATH = re.compile(r'"(/[^"]+)"')
DAMAGED = ".damaged"  # suffix of a step directory set aside because it does not read back


def write_failure(error: BaseException) -> tuple[int, str | None] | None:
    """``(errno, path or None)`` if ``error`` is the storage refusing a write (an ``OSError``
    or a tensorstore error with one of :data:`~twinjax.runtime.files.WRITE_ERRNOS`), else None.

    >>> write_failure(ValueError('OUT_OF_RANGE: Failed writing: "/r/d/1a": Failed to write 9 '
    ...                          "bytes to file 4: File too large [os_error_code='27']"))
    (27, '/r/d/1a')
    """
    if isinstance(error, OSError):
        return (error.errno, error.filename) if error.errno in WRITE_ERRNOS else None
    code = _OS_ERROR_CODE.search(str(error))
    if not isinstance(error, ValueError) or code is None or int(code[1]) not in WRITE_ERRNOS:
        return None
    paths = _QUOTED_PATH.findall(str(error))
    return int(code[1]), (paths[-1] if paths else None)  # the last quoted path: the file


def last_checkpoint(root: Path) -> Path | None:
    """The most recently completed checkpoint step directory under ``root`` (a phase's
    checkpoint directory, or a run's ``checkpoints/``), or None."""
    root = Path(root)
    if not root.is_dir():
        return None
    # orbax writes a step under a temporary name and renames it when complete
    done = [p.parent for p in root.rglob("_CHECKPOINT_METADATA")
            if p.parent.name.isdigit() and "tmp" not in str(p.relative_to(root))]  # fmt: skip
    if not done:
        return None
    return max(done, key=lambda p: ((p / "_CHECKPOINT_METADATA").stat().st_mtime_ns, int(p.name)))


class CheckedManager(ocp.CheckpointManager):
    """orbax's ``CheckpointManager`` whose refused writes raise
    :class:`~twinjax.runtime.files.RunWriteError` (from ``save``, ``wait_until_finished`` and
    ``close``: an asynchronous save's failure surfaces at the next of them)."""

    @contextlib.contextmanager
    def _writing(self, step: int | None) -> Iterator[None]:
        try:
            yield
        except (OSError, ValueError) as e:
            failure = write_failure(e)
            if failure is None:
                raise
            code, path = failure
            here = Path(self.directory)
            path = path or (here / str(step) if step is not None else here)
            raise RunWriteError(path, code, last_checkpoint(here)) from e

    def save(self, step: int, *args, **kwargs) -> bool:
        with self._writing(step):
            return super().save(step, *args, **kwargs)

    def wait_until_finished(self) -> None:
        with self._writing(None):
            super().wait_until_finished()

    def close(self) -> None:
        with self._writing(None):
            super().close()


def restore_newest(manager: ocp.CheckpointManager, restore: Callable[[int], Any]) -> Any | None:
    """``restore(step)`` for the newest step of ``manager`` that reads back; None if it has no
    checkpoint.

    A newer step that fails to read (a truncated or corrupted file) is renamed
    ``<step>.damaged`` (kept for inspection; the step can then be saved again) with a warning
    naming the step and directory, and the step before it is tried.

    Raises:
      RunDirectoryError: checkpoints exist but none reads back (nothing is set aside).
    """
    directory = Path(manager.directory)
    failed: list[tuple[int, Exception]] = []
    for step in sorted(manager.all_steps(), reverse=True):
        try:
            out = restore(step)
        except Exception as e:  # whatever a damaged file makes orbax or tensorstore raise
            failed.append((step, e))
            continue
        for bad, e in failed:
            aside = directory / f"{bad}{DAMAGED}"
            (directory / str(bad)).rename(aside)
            log.warning(
                "checkpoint step %d in %s does not read back (%s: %s); set aside as %s, "
                "resuming from step %d instead", bad, directory, type(e).__name__,
                _first_line(e), aside.name, step,
            )  # fmt: skip
        if failed:
            manager.reload()
        return out
    if failed:
        step, e = failed[0]
        raise RunDirectoryError(
            f"no checkpoint in {directory} reads back (newest, step {step}: {type(e).__name__}: "
            f"{_first_line(e)}); start over with train.resume=false or run in a new directory"
        ) from e
    return None


def _first_line(e: Exception) -> str:
    text = str(e).strip().splitlines()
    return text[0][:300] if text else ""


class QuietWriteFailures(logging.Filter):
    """Drops orbax's own error logs (tracebacks from its background threads) of a write the
    storage refused: :class:`CheckedManager` raises it as one
    :class:`~twinjax.runtime.files.RunWriteError` instead. For the ``absl`` logger."""

    def filter(self, record: logging.LogRecord) -> bool:
        error = record.exc_info[1] if record.exc_info else None
        if error is not None and write_failure(error) is not None:
            return False
        code = _OS_ERROR_CODE.search(record.getMessage())
        return code is None or int(code[1]) not in WRITE_ERRNOS
