"""Files a run writes, whole or not at all: a temporary name beside the target, then a rename.

Every file of a run directory (report, figures, tables, metrics, saved twins) is written under a
temporary name in its own directory, flushed to disk and renamed over the target with
``os.replace`` (atomic on POSIX): a reader, a rerun or a person sees the old file or the new
one, never a part of one. A write that fails for want of space, size, permission or a writable
file system raises :class:`RunWriteError`, one line naming the path and the reason, and leaves
the target and every file written before it as they were.

>>> import tempfile
>>> with tempfile.TemporaryDirectory() as d:
...     _ = atomic_write_text(Path(d) / "report.md", "# a run")
...     with replacing(Path(d) / "table.csv") as tmp:  # for writers that take a path
...         _ = tmp.write_text("x,y")
...     sorted(p.name for p in Path(d).iterdir())
['report.md', 'table.csv']
"""

import contextlib
import errno
import os
import secrets
import shutil
from collections.abc import Iterator
from pathlib import Path

# what the storage can refuse a write with (not a missing directory or a bad name: those are
# the caller's mistakes and keep their own error)
WRITE_ERRNOS = frozenset(
    {errno.ENOSPC, errno.EDQUOT, errno.EFBIG, errno.EACCES, errno.EPERM, errno.EROFS, errno.EIO}
)


class RunWriteError(RuntimeError):
    """A file of the run could not be written (no space, too large, no permission, ...).

    Args:
      path: the file (or directory) that could not be written.
      code: the errno (``os.strerror(code)`` is the reason shown).
      checkpoint: the run's last complete checkpoint directory; ``""`` when it has none;
        None when not looked up (the app looks it up in the run directory).
    """

    def __init__(self, path: str | Path, code: int, checkpoint: str | Path | None = None):
        checkpoint = None if checkpoint is None else str(checkpoint)
        super().__init__(str(path), code, checkpoint)  # (what pickling passes back)
        self.path, self.errno, self.checkpoint = str(path), code, checkpoint

    def with_checkpoint(self, checkpoint: Path | None) -> "RunWriteError":
        """The same error naming ``checkpoint`` (None: the run has no complete checkpoint)."""
        return RunWriteError(self.path, self.errno, "" if checkpoint is None else checkpoint)

    def __str__(self) -> str:
        name = errno.errorcode.get(self.errno, str(self.errno))
        text = f"cannot write {self.path}: {os.strerror(self.errno)} ({name}); the files written "
        text += "before it are intact"
        remedy = _REMEDY.get(self.errno, "fix the storage")
        if self.checkpoint:
            text += (f"; last complete checkpoint: {self.checkpoint} ({remedy}, then rerun the "
                     "same command in the same directory to resume from it)")  # fmt: skip
        elif self.checkpoint == "":
            text += f"; no checkpoint was complete ({remedy}, then rerun)"
        return text


_REMEDY = {
    errno.ENOSPC: "free some disk space",
    errno.EDQUOT: "free some of your disk quota",
    errno.EFBIG: "raise the file size limit (ulimit -f)",
    errno.EACCES: "make the directory writable",
    errno.EPERM: "make the directory writable",
    errno.EROFS: "remount the file system read-write",
    errno.EIO: "check the disk",
}


@contextlib.contextmanager
def write_errors(path: str | Path) -> Iterator[None]:
    """Turns an ``OSError`` of the storage (:data:`WRITE_ERRNOS`) inside the block into a
    :class:`RunWriteError` naming ``path``; other errors pass unchanged."""
    try:
        yield
    except OSError as e:
        if e.errno not in WRITE_ERRNOS:
            raise
        raise RunWriteError(path, e.errno) from e


def _temporary(path: Path, kind: str) -> Path:
    # hidden, unique, and ending with the target's own name: writers that read the format
    # from the suffix (savefig, to_csv's compression, np.savez) write the same format
    return path.with_name(f".{kind}-{secrets.token_hex(4)}-{path.name}")


def _fsync(path: Path) -> None:
    # some file systems report a full disk or quota only when the data reaches the disk
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


@contextlib.contextmanager
def replacing(path: str | Path) -> Iterator[Path]:
    """A temporary path beside ``path`` for a writer to create (``fig.savefig(tmp)``,
    ``frame.to_csv(tmp)``); when the block ends without error it is flushed to disk and renamed
    to ``path``, else removed (``path`` keeps its old content).

    Raises:
      RunWriteError: the storage refused the write (naming ``path``).
    """
    path = Path(path)
    tmp = _temporary(path, "tmp")
    try:
        with write_errors(path):
            yield tmp
            _fsync(tmp)
            os.replace(tmp, path)
    finally:
        with contextlib.suppress(OSError):
            tmp.unlink(missing_ok=True)


def atomic_write_text(path: str | Path, text: str, encoding: str = "utf-8") -> Path:
    """Writes ``text`` to ``path`` whole or not at all (:func:`replacing`); returns ``path``."""
    with replacing(path) as tmp:
        tmp.write_text(text, encoding=encoding)
    return Path(path)


def atomic_write_bytes(path: str | Path, data: bytes) -> Path:
    """Writes ``data`` to ``path`` whole or not at all (:func:`replacing`); returns ``path``."""
    with replacing(path) as tmp:
        tmp.write_bytes(data)
    return Path(path)


@contextlib.contextmanager
def replacing_dir(path: str | Path) -> Iterator[Path]:
    """A new, empty directory beside ``path`` to fill; when the block ends without error it
    takes ``path``'s place (the old directory, if any, is removed), else it is removed and
    ``path`` is left as it was.

    Raises:
      RunWriteError: the storage refused a write (naming ``path``, or the file in it as it
        would have been named there).
    """
    path = Path(path)
    tmp, old = _temporary(path, "tmp"), _temporary(path, "old")
    try:
        with write_errors(path):
            tmp.mkdir(parents=True)
            try:
                yield tmp
            except RunWriteError as e:  # name the file where it was going to be
                raise RunWriteError(
                    e.path.replace(str(tmp), str(path), 1), e.errno, e.checkpoint
                ) from e
            if path.exists():
                os.replace(path, old)
            try:
                os.replace(tmp, path)
            except OSError:
                if old.exists():
                    os.replace(old, path)
                raise
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
        shutil.rmtree(old, ignore_errors=True)
