"""A million-subject ingest: ``read_cohort`` on a generated Parquet dataset, whole and by shares.

    .venv/bin/python scripts/bench_ingest.py                          # 10^6 subjects x 100 rows
    .venv/bin/python scripts/bench_ingest.py --subjects 20000 --rows 50   # small, seconds

Writes ``--subjects`` x ``--rows`` observation rows (two streams, ``rows / 2`` times each, one
subject's rows in one file, ``--files`` files of row groups of ``--row-group`` rows) in a
temporary directory (after checking the free disk), reads it with ``read_cohort`` in a fresh
process (``--chunk-subjects`` subjects at a time), then in ``--processes`` processes each reading
its share of the subjects (one after the other, so that each one's peak memory is its own), and
deletes the data. Each reading process reports its wall time, CPU seconds (user + system),
peak resident memory (``ru_maxrss``) and what it read; the table is printed as Markdown.
"""

import argparse
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

_BYTES_PER_ROW = 12  # on disk (dictionary ids, float64 time and value, snappy): an upper estimate


def write_dataset(root: Path, subjects: int, rows: int, files: int, row_group: int) -> int:
    """Writes the observation table as ``files`` Parquet files; returns the bytes written."""
    times = rows // 2
    variables = pa.array(["glucose", "hr"])
    rng = np.random.default_rng(0)
    for k, block in enumerate(np.array_split(np.arange(subjects), files)):
        n = len(block) * times * 2
        subject = np.repeat(np.arange(len(block), dtype=np.int32), times * 2)
        ids = pa.array([f"s{i:07d}" for i in block])
        table = pa.table(
            {
                "subject_id": pa.DictionaryArray.from_arrays(subject, ids),
                "time": np.tile(np.repeat(np.arange(times, dtype=np.float64), 2), len(block)),
                "variable": pa.DictionaryArray.from_arrays(
                    np.tile(np.arange(2, dtype=np.int32), n // 2), variables
                ),
                "value": rng.normal(size=n),
            }
        )
        # plain text columns in the file's schema (dictionary-encoded pages, as any writer does)
        table = table.cast(pa.schema([("subject_id", pa.string()), ("time", pa.float64()),
                                      ("variable", pa.string()), ("value", pa.float64())]))  # fmt: skip
        pq.write_table(table, root / f"part-{k:05d}.parquet", row_group_size=row_group)
    return sum(p.stat().st_size for p in root.iterdir())


def read(path: str, index: int, count: int, chunk: int) -> dict:
    """One process's read: its measures as a dict (printed as JSON by ``--read``)."""
    from twinjax.data import read_cohort

    start, usage = time.perf_counter(), resource.getrusage(resource.RUSAGE_SELF)
    cohort = read_cohort(
        path, step=1.0, chunk_subjects=chunk, process_index=index, process_count=count
    )
    wall = time.perf_counter() - start
    done = resource.getrusage(resource.RUSAGE_SELF)
    return {
        "process": f"{index} of {count}",
        "wall_s": wall,
        "cpu_s": done.ru_utime + done.ru_stime - usage.ru_utime - usage.ru_stime,
        "peak_rss_gb": done.ru_maxrss * 1024 / 1e9,  # Linux: kilobytes
        "subjects": cohort.n_individuals,
        "rows": cohort.meta["rows"]["observations"],
        "shape": list(cohort.values.shape),
        "chunks": cohort.meta["chunks"]["count"],
    }


def _child(path: Path, index: int, count: int, chunk: int) -> dict:
    cmd = [sys.executable, __file__, "--read", str(path), "--process-index", str(index),
           "--process-count", str(count), "--chunk-subjects", str(chunk)]  # fmt: skip
    out = subprocess.run(cmd, check=True, capture_output=True, text=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def table(results: list[dict], args) -> str:
    head = (f"`bench_ingest.py --subjects {args.subjects} --rows {args.rows} --files {args.files} "
            f"--chunk-subjects {args.chunk_subjects}`: {args.subjects * args.rows:,} rows\n\n")  # fmt: skip
    lines = ["| process | subjects | rows | wall s | CPU s | peak RSS GB | cohort shape |",
             "|---|---:|---:|---:|---:|---:|---|"]  # fmt: skip
    for r in results:
        lines.append(
            f"| {r['process']} | {r['subjects']:,} | {r['rows']:,} | {r['wall_s']:.1f} | "
            f"{r['cpu_s']:.1f} | {r['peak_rss_gb']:.2f} | {' x '.join(map(str, r['shape']))} |"
        )
    return head + "\n".join(lines)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--subjects", type=int, default=1_000_000)
    p.add_argument("--rows", type=int, default=100, help="rows per subject (two streams)")
    p.add_argument("--files", type=int, default=100)
    p.add_argument("--row-group", type=int, default=1_000_000, help="rows per row group")
    p.add_argument("--chunk-subjects", type=int, default=50_000)
    p.add_argument("--processes", type=int, default=2)
    p.add_argument("--dir", default=None, help="where to write the data (default: a temp dir)")
    p.add_argument("--json", default=None, help="also write the results here")
    p.add_argument("--read", default=None, help=argparse.SUPPRESS)
    p.add_argument("--process-index", type=int, default=0, help=argparse.SUPPRESS)
    p.add_argument("--process-count", type=int, default=1, help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.read:
        res = read(args.read, args.process_index, args.process_count, args.chunk_subjects)
        print(json.dumps(res))
        return
    root = Path(tempfile.mkdtemp(prefix="bench_ingest_", dir=args.dir))
    try:
        need = 3 * _BYTES_PER_ROW * args.subjects * args.rows
        free = shutil.disk_usage(root).free
        if free < need:
            sys.exit(f"{root}: {free / 1e9:.1f} GB free, want {need / 1e9:.1f} GB: use --dir")
        start = time.perf_counter()
        size = write_dataset(root, args.subjects, args.rows, args.files, args.row_group)
        print(f"wrote {size / 1e9:.2f} GB in {time.perf_counter() - start:.0f} s to {root}",
              flush=True)  # fmt: skip
        results = [_child(root, 0, 1, args.chunk_subjects)]
        print(json.dumps(results[-1]), flush=True)
        for k in range(args.processes):
            results.append(_child(root, k, args.processes, args.chunk_subjects))
            print(json.dumps(results[-1]), flush=True)
    finally:
        shutil.rmtree(root, ignore_errors=True)
    shares = results[1:]
    assert sum(r["subjects"] for r in shares) == results[0]["subjects"], "shares do not cover"
    assert sum(r["rows"] for r in shares) == results[0]["rows"]
    print(table(results, args))
    if args.json:
        Path(args.json).write_text(json.dumps({"args": vars(args), "results": results}, indent=1))


if __name__ == "__main__":
    os.environ.setdefault("JAX_PLATFORMS", "cpu")
    main()
