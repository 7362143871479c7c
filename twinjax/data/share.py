"""Which subjects a process reads: a split of the cohort by a stable hash of the subject id.

With ``process_count`` processes, process ``k`` reads the subjects whose id hashes to ``k``:

    share(id) = fmix64(fnv1a64(utf8(text(id)))) mod process_count

``text(id)`` is the id as text (an integer id 7 is ``"7"``, as a CSV file holds it), ``fnv1a64``
is the 64-bit FNV-1a hash of its UTF-8 bytes and ``fmix64`` MurmurHash3's 64-bit finalizer (FNV-1a
alone keeps the low bits of the bytes' parity, so ids ending in even digits would share a process
under a power-of-two count). The split depends on the id alone: not on the file, the row order,
the chunking, Python's salted ``hash()`` or the run, so every process computes its share from the
same files without talking to the others, and a rerun reads the same subjects. A missing id
belongs to process 0, which reports it (nothing is left out because no process owned it).
"""

from typing import NamedTuple

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

_FNV_OFFSET = np.uint64(0xCBF29CE484222325)
_FNV_PRIME = np.uint64(0x100000001B3)
_FMIX = (np.uint64(0xFF51AFD7ED558CCD), np.uint64(0xC4CEB9FE1A85EC53))
HASH = "fmix64(fnv1a64(utf8 id)) mod process_count"


class Share(NamedTuple):
    """Process ``index`` of ``count`` reads the subjects :func:`subject_share` gives it."""

    index: int = 0
    count: int = 1

    def check(self) -> "Share":
        if not (isinstance(self.count, int) and self.count >= 1):
            raise ValueError(f"process_count must be an integer >= 1, got {self.count!r}")
        if not (isinstance(self.index, int) and 0 <= self.index < self.count):
            raise ValueError(
                f"process_index must be an integer in [0, {self.count}), got {self.index!r}"
            )
        return self

    def mask(self, ids) -> np.ndarray:
        """True for the ids (an Arrow array, or anything ``pa.array`` takes) in this share."""
        if self.count == 1:
            return np.ones(len(ids), dtype=bool)
        return subject_share(ids, self.count) == self.index


def subject_share(ids, count: int) -> np.ndarray:
    """The process (``0 .. count-1``) of each id; a missing id goes to process 0.

    >>> subject_share(["s1", "s2", "s3", "s4", None], 2).tolist()
    [1, 0, 0, 1, 0]
    """
    ids = ids if isinstance(ids, pa.Array | pa.ChunkedArray) else _arrow(ids)
    if isinstance(ids, pa.ChunkedArray):
        ids = ids.combine_chunks()
    if pa.types.is_dictionary(ids.type):
        return _by_index(ids, count)
    return _by_index(pc.dictionary_encode(ids), count)  # hash each distinct id once


def _by_index(ids: pa.DictionaryArray, count: int) -> np.ndarray:
    """Each distinct id hashed once; a null index (a missing id) picks the appended 0."""
    lookup = np.append((stable_hash(ids.dictionary) % np.uint64(count)).astype(np.int64), 0)
    return lookup[pc.fill_null(ids.indices, -1).to_numpy(zero_copy_only=False)]


def _arrow(ids) -> pa.Array:
    try:
        return pa.array(ids)
    except (pa.ArrowInvalid, pa.ArrowTypeError):  # mixed Python types: compare as text
        return pa.array([None if i is None else str(i) for i in ids], pa.string())


def stable_hash(ids: pa.Array) -> np.ndarray:
    """``fmix64(fnv1a64(utf8 text))`` of each id, as uint64 (nulls hash as the empty text)."""
    text = ids if pa.types.is_large_string(ids.type) else pc.cast(ids, pa.large_string())
    text = pc.fill_null(text, "")
    offsets = np.frombuffer(text.buffers()[1], np.int64)[text.offset : text.offset + len(text) + 1]
    data = np.frombuffer(text.buffers()[2] or b"", np.uint8)
    start, length = offsets[:-1], np.diff(offsets)
    h = np.full(len(text), _FNV_OFFSET, np.uint64)
    for j in range(int(length.max(initial=0))):
        live = length > j
        h[live] = (h[live] ^ data[start[live] + j].astype(np.uint64)) * _FNV_PRIME
    h ^= h >> np.uint64(33)
    h *= _FMIX[0]
    h ^= h >> np.uint64(33)
    h *= _FMIX[1]
    h ^= h >> np.uint64(33)
    return h
