"""Saved models that know when they are damaged: a manifest of their files, checked on load.

A saved model directory (``model/``) ends with ``manifest.json``, written last: the relative
path, size and SHA-256 of every other file in it. :func:`verify_manifest` compares the files with
it before anything reads them, and refuses a damaged or partly written model with
:class:`DamagedModelError` naming the file. A model saved before manifests existed loads with a
warning.

>>> import tempfile
>>> with tempfile.TemporaryDirectory() as d:
...     _ = (Path(d) / "meta.json").write_text('{"format": 1}')
...     _ = write_manifest(Path(d))
...     verify_manifest(Path(d))  # intact: nothing to say
...     _ = (Path(d) / "meta.json").write_text('{"form')
...     verify_manifest(Path(d))
Traceback (most recent call last):
...
twinjax.runtime.manifest.DamagedModelError: .../meta.json is damaged or partly written (6 bytes, 13 when saved); re-save the model from the run's checkpoints (rerun the run in its directory), or retrain
"""

import hashlib
import json
import logging
import os
from pathlib import Path

from twinjax.runtime.files import atomic_write_text

log = logging.getLogger(__name__)

MANIFEST = "manifest.json"
FORMAT = 1
ADVICE = "re-save the model from the run's checkpoints (rerun the run in its directory), or retrain"


class DamagedModelError(ValueError):
    """A saved model's file is missing, truncated or changed since it was saved, or unreadable."""


def damaged(path: Path, what: str) -> DamagedModelError:
    """The error for ``path`` (``what`` is wrong with it), with what to do."""
    return DamagedModelError(f"{path} {what}; {ADVICE}")


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def _files(directory: Path) -> list[Path]:
    return sorted(p for p in directory.rglob("*") if p.is_file() and p.name != MANIFEST)


def write_manifest(directory: Path) -> Path:
    """Writes ``directory/manifest.json`` (atomically; call it after every other file):
    relative path, size and SHA-256 of each file under ``directory``."""
    directory = Path(directory)
    files = {
        p.relative_to(directory).as_posix(): {"size": p.stat().st_size, "sha256": _sha256(p)}
        for p in _files(directory)
    }
    text = json.dumps({"format": FORMAT, "files": files}, indent=1, sort_keys=True)
    return atomic_write_text(directory / MANIFEST, text + "\n")


def verify_manifest(directory: Path) -> None:
    """Checks every file ``directory/manifest.json`` lists (present, same size, same SHA-256).

    Raises:
      DamagedModelError: a listed file is missing or differs, or the manifest is unreadable
        (naming the file and what to do).
    """
    directory = Path(directory)
    path = directory / MANIFEST
    if not path.exists():
        log.warning(
            "%s has no %s (saved by an older twinjax, or not by twinjax): its files are not "
            "checked; re-save it to add one", directory, MANIFEST,
        )  # fmt: skip
        return
    listed = read_json(path).get("files")
    if not isinstance(listed, dict):
        raise damaged(path, "lists no files")
    for name, entry in sorted(listed.items()):
        file = directory / name
        if not file.is_file():
            raise damaged(file, "is missing (the model was partly written or files were removed)")
        size = file.stat().st_size
        if size != entry["size"]:
            raise damaged(file, f"is damaged or partly written ({size} bytes, "
                                f"{entry['size']} when saved)")  # fmt: skip
        if _sha256(file) != entry["sha256"]:
            raise damaged(file, "has changed since it was saved (its SHA-256 differs)")


def check_replaceable(directory: Path, names: set[str]) -> None:
    """Refuses to save a model over ``directory`` if it holds anything but a model's ``names``
    (and the manifest): saving replaces the whole directory.

    Raises:
      FileExistsError: naming the directory and its first other entry.
    """
    directory = Path(directory)
    other = sorted(set(os.listdir(directory)) - names - {MANIFEST}) if directory.is_dir() else []
    if other:
        raise FileExistsError(
            f"{directory} holds {other[0]!r}, not only a saved model: saving replaces the whole "
            "directory; save into a new one (e.g. RUN_DIR/model)"
        )


def read_json(path: Path) -> dict:
    """A JSON object file of a saved model; a file that does not read is refused naming it.

    Raises:
      DamagedModelError: unreadable, not JSON, or not an object.
    """
    try:
        value = json.loads(Path(path).read_bytes())
    except (OSError, ValueError) as e:  # JSONDecodeError and UnicodeDecodeError are both
        raise damaged(path, f"does not read back ({type(e).__name__}: {e})") from e
    if not isinstance(value, dict):
        raise damaged(path, f"holds a JSON {type(value).__name__}, not an object")
    return value
