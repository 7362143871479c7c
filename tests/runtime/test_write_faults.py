"""Write faults: every file of a run is written whole or not at all, and a write the storage
refuses (file too large, read-only directory) ends the run with one line naming the path, the
reason and the last complete checkpoint, exit status 1, every earlier file intact."""

import contextlib
import errno
import hashlib
import json
import os
import pickle
import re
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import NamedTuple

import jax.numpy as jnp
import pytest

from twinjax.__main__ import USER_ERRORS
from twinjax.runtime import run_loop
from twinjax.runtime.checkpoints import write_failure
from twinjax.runtime.files import RunWriteError, atomic_write_text, replacing, replacing_dir

ROOT = Path(__file__).resolve().parents[2]
TINY = ["model.family=recurrent", "data.n_individuals=3", "data.n_steps=30", "data.context=4",
        "data.horizon=1", "model.hidden=4", "model.attention_dim=4", "train.steps=4",
        "train.personal_steps=4", "train.batch_windows=2", "train.eval_every=3",
        "train.checkpoint_every=2", "train.progress=false",
        "experiment.n_plot_individuals=1"]  # fmt: skip
FSIZE_LIMIT = 16_000  # bytes: above the tiny run's logs and tables, below its figures


def _chattr_works(tmp: Path) -> bool:
    probe = tmp / "chattr-probe"
    probe.mkdir()
    try:
        done = subprocess.run(["chattr", "+i", str(probe)], capture_output=True).returncode == 0
    except FileNotFoundError:
        return False
    if done:
        subprocess.run(["chattr", "-i", str(probe)], check=True)
    return done


def _read_only_method(tmp: Path) -> str:
    """How to make a directory read-only here: chmod 0o500, or as root (whom modes do not
    stop) the immutable attribute, or else a simulated refusal (os.replace into it fails)."""
    if os.geteuid() != 0:
        return "chmod"
    return "chattr" if _chattr_works(tmp) else "simulate"


@contextlib.contextmanager
def read_only(path: Path, method: str):
    if method == "chmod":
        os.chmod(path, 0o500)
    elif method == "chattr":
        subprocess.run(["chattr", "+i", str(path)], check=True)
    else:
        pytest.skip("no way to make a directory read-only for root here (no chattr)")
    try:
        yield
    finally:
        undo(path, method)


def undo(path: Path, method: str) -> None:
    if method == "chmod":
        os.chmod(path, 0o700)
    elif method == "chattr":
        subprocess.run(["chattr", "-i", str(path)], check=True)


def _digests(root: Path) -> dict[str, str]:
    return {str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(root.rglob("*")) if p.is_file()}  # fmt: skip


# ---- the helper ----------------------------------------------------------------------------


def test_a_refused_write_keeps_the_old_file_and_leaves_no_temporary(tmp_path):
    path = atomic_write_text(tmp_path / "report.md", "old")
    with pytest.raises(RunWriteError) as e, replacing(path) as tmp:
        tmp.write_text("half of the new")
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(tmp))  # as a full disk does
    assert path.read_text() == "old" and [p.name for p in tmp_path.iterdir()] == ["report.md"]
    assert str(e.value) == (f"cannot write {path}: No space left on device (ENOSPC); the files "
                            "written before it are intact")  # fmt: skip
    assert isinstance(e.value, USER_ERRORS)
    back = pickle.loads(pickle.dumps(e.value.with_checkpoint(None)))  # (process pools)
    assert back.errno == errno.ENOSPC
    assert str(back).endswith("; no checkpoint was complete (free some disk space, then rerun)")
    with pytest.raises(FileNotFoundError), replacing(tmp_path / "missing" / "x.csv") as tmp:
        tmp.write_text("a bad name is the caller's error, not the storage's")


def test_a_directory_is_replaced_whole_or_not_at_all(tmp_path):
    model = tmp_path / "model"
    with replacing_dir(model) as new:
        (new / "a.json").write_text("1")
    with pytest.raises(RunWriteError, match=re.escape(f"cannot write {model / 'b.json'}")):
        with replacing_dir(model) as new:
            (new / "a.json").write_text("2")
            with replacing(new / "b.json"):
                raise OSError(errno.EDQUOT, "quota")
    assert [p.name for p in tmp_path.iterdir()] == ["model"]
    assert [p.name for p in model.iterdir()] == ["a.json"] and (model / "a.json").read_text() == "1"


def test_tensorstore_write_errors_are_read_for_their_errno_and_file():
    msg = ('OUT_OF_RANGE: Error writing "w/0" in OCDBT database at local file "/r/2.tmp/": '
           'Failed writing: "/r/2.tmp/d/e6d5": Failed to write 248932 bytes to file 4: File too '
           "large [os_error_code='27']")  # fmt: skip
    assert write_failure(ValueError(msg)) == (errno.EFBIG, "/r/2.tmp/d/e6d5")
    assert write_failure(ValueError(msg.replace("'27'", "'2'"))) is None  # ENOENT: not storage
    assert write_failure(PermissionError(errno.EACCES, "denied", "/r/x")) == (errno.EACCES, "/r/x")
    assert write_failure(ValueError("shapes differ")) is None


# ---- checkpoints ---------------------------------------------------------------------------


class _State(NamedTuple):
    params: object
    step: object


def _step(s):
    params = 0.9 * s.params + 1.0
    return _State(params, s.step + 1), jnp.sum(params)


def _start():
    return _State(jnp.arange(10_000.0), jnp.zeros((), jnp.int32))  # 40 kB per checkpoint


def test_a_refused_checkpoint_names_its_step_and_keeps_the_earlier_ones(tmp_path):
    ckpt = tmp_path / "population"
    run_loop(_start(), _step, 6, checkpoint_dir=ckpt, every=1, progress=False, stop_after=2)
    before = _digests(ckpt)
    with read_only(ckpt, _read_only_method(tmp_path)), pytest.raises(RunWriteError) as e:
        run_loop(_start(), _step, 6, checkpoint_dir=ckpt, every=1, progress=False)
    reason = r"Operation not permitted \(EPERM\)" if os.geteuid() == 0 else "Permission denied"
    assert re.match(rf"cannot write {ckpt}/3\S*: {reason}", str(e.value)), str(e.value)
    assert f"last complete checkpoint: {ckpt / '2'} " in str(e.value)
    after = _digests(ckpt)
    assert {k: after[k] for k in before if not k.startswith("losses/")} == {
        k: v for k, v in before.items() if not k.startswith("losses/")
    }


FSIZE_LOOP = """
import resource, signal, sys
import jax.numpy as jnp
from typing import NamedTuple
from twinjax.runtime import run_loop

class S(NamedTuple):
    params: object
    step: object

def step(s):  # (as _step below)
    params = 0.9 * s.params + 1.0
    return S(params, s.step + 1), jnp.sum(params)

start = S(jnp.arange(10_000.0), jnp.zeros((), jnp.int32))
run_loop(start, step, 6, checkpoint_dir=sys.argv[1], every=1, progress=False, stop_after=2)
signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # (Python's default too): writes fail, EFBIG
resource.setrlimit(resource.RLIMIT_FSIZE, (20_000, resource.RLIM_INFINITY))
run_loop(start, step, 6, checkpoint_dir=sys.argv[1], every=1, progress=False)
"""


@pytest.mark.integration
def test_a_checkpoint_over_the_file_size_limit_is_one_error_then_resumes(tmp_path):
    ckpt = tmp_path / "population"
    proc = subprocess.run([sys.executable, "-c", FSIZE_LOOP, str(ckpt)], capture_output=True,
                          text=True, timeout=300, env={**os.environ, "XLA_FLAGS": ""})  # fmt: skip
    assert proc.returncode == 1
    last = next(line for line in proc.stderr.splitlines() if "RunWriteError:" in line)
    assert re.fullmatch(
        rf"twinjax\.runtime\.files\.RunWriteError: cannot write {ckpt}/3\.orbax-checkpoint-tmp/"
        r"\S+: File too large \(EFBIG\); the files written before it are intact; last complete "
        rf"checkpoint: {ckpt}/2 \(.*\)", last,
    ), last  # fmt: skip
    assert sorted(p.name for p in ckpt.iterdir() if p.name.isdigit()) == ["1", "2"]
    state, losses = run_loop(_start(), _step, 6, checkpoint_dir=ckpt, every=1, progress=False)
    ref, ref_losses = run_loop(_start(), _step, 6, checkpoint_dir=None, every=1, progress=False)
    assert int(state.step) == 6 and bool((state.params == ref.params).all())
    assert (losses == ref_losses).all()


# ---- the app -------------------------------------------------------------------------------

# the storage fails once the twins are saved: a file size limit (in a subprocess of its own: the
# limit would hold for this test process too)
DRIVER = textwrap.dedent("""
    import hashlib, json, resource, signal, sys
    from pathlib import Path
    from twinjax import pipeline

    run_dir, snapshot, limit = Path(sys.argv[1]), Path(sys.argv[2]), int(sys.argv[3])
    save_model = pipeline.save_model

    def then_fault(*args, **kwargs):
        bundle = save_model(*args, **kwargs)
        files = {str(p): hashlib.sha256(p.read_bytes()).hexdigest()
                 for p in run_dir.rglob("*") if p.is_file()}
        snapshot.write_text(json.dumps(files))
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, resource.RLIM_INFINITY))
        return bundle

    pipeline.save_model = then_fault
    sys.argv = ["twinjax", f"hydra.run.dir={run_dir}", *sys.argv[4:]]
    from twinjax.__main__ import cli
    cli()
""")

# what a run keeps appending to after the fault (logs) or removes at its end (its lock)
_LIVE = re.compile(r"(^|/)(tensorboard/|[^/]*\.log$|run\.lock$)")


def _check_one_line_and_intact(run_dir: Path, status: int, out: str, before: dict, reason: str,
                               remedy: str):  # fmt: skip
    errors = [line for line in out.splitlines() if "ERROR" in line]
    assert status == 1, out[-3000:]
    assert len(errors) == 1 and "Traceback" not in out, out[-3000:]
    last = run_dir / "checkpoints" / "personal" / "chunk0000" / "4"
    m = re.search(
        rf"RunWriteError: cannot write ({re.escape(str(run_dir))}/\S+): {reason}; the files "
        rf"written before it are intact; last complete checkpoint: {re.escape(str(last))} "
        rf"\({re.escape(remedy)}, then rerun the same command in the same directory",
        errors[0],
    )  # fmt: skip
    assert m, errors[0]
    failed = Path(m[1])
    assert not failed.exists()  # (a new file of this run: not there rather than a part of it)
    kept = {k: v for k, v in before.items() if not _LIVE.search(k)}
    assert any(k.endswith("model/manifest.json") for k in kept)
    assert {k: v for k, v in _digests(run_dir).items() if str(run_dir / k) in kept} == {
        Path(k).relative_to(run_dir).as_posix(): v for k, v in kept.items()
    }  # every file written before the fault is there, byte-identical
    assert not [p for p in run_dir.rglob(".tmp-*")]  # and no temporary is left behind
    return errors[0]


@pytest.mark.integration
def test_app_over_the_file_size_limit_ends_with_one_line(tmp_path):
    run_dir, snapshot = tmp_path / "run", tmp_path / "snapshot.json"
    env = {k: v for k, v in os.environ.items() if k != "HYDRA_FULL_ERROR"}
    # the limit truncates what JAX writes to its compilation cache too: a cache of its own
    env["JAX_COMPILATION_CACHE_DIR"] = str(tmp_path / "jax-cache")
    args = [str(run_dir), str(snapshot), str(FSIZE_LIMIT), *TINY]
    proc = subprocess.run([sys.executable, "-c", DRIVER, *args], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=600)  # fmt: skip
    before = json.loads(snapshot.read_text())
    line = _check_one_line_and_intact(
        run_dir, proc.returncode, proc.stdout + proc.stderr, before, r"File too large \(EFBIG\)",
        "raise the file size limit (ulimit -f)",
    )  # fmt: skip
    assert re.search(r"cannot write \S+\.png", line)  # the first figure (tables are small)
    assert not (run_dir / "metrics.json").exists() and not (run_dir / "report.md").exists()


@pytest.mark.integration
def test_app_in_a_directory_turned_read_only_ends_with_one_line(tmp_path, monkeypatch, run_cli):
    """The command in this process; once the twins are saved, its directory turns read-only."""
    from twinjax import pipeline

    method = _read_only_method(tmp_path)
    reason = {"chmod": r"Permission denied \(EACCES\)", "chattr": r"Operation not permitted "
              r"\(EPERM\)", "simulate": r"Permission denied \(EACCES\)"}[method]  # fmt: skip
    run_dir, before = tmp_path / "run", {}
    save_model, real_replace = pipeline.save_model, os.replace

    def refused(src, dst, *args, **kwargs):  # simulated: nothing can be renamed into it
        if Path(dst).parent == run_dir:
            raise PermissionError(errno.EACCES, os.strerror(errno.EACCES), str(dst))
        return real_replace(src, dst, *args, **kwargs)

    def then_fault(*args, **kwargs):
        bundle = save_model(*args, **kwargs)
        before.update({str(run_dir / k): v for k, v in _digests(run_dir).items()})
        if method == "simulate":
            monkeypatch.setattr(os, "replace", refused)
        elif method == "chmod":
            os.chmod(run_dir, 0o500)
        else:
            subprocess.run(["chattr", "+i", str(run_dir)], check=True)
        return bundle

    monkeypatch.setattr(pipeline, "save_model", then_fault)
    try:
        status, out = run_cli(f"hydra.run.dir={run_dir}", *TINY)
    finally:
        if run_dir.exists():
            undo(run_dir, method)
        monkeypatch.setattr(os, "replace", real_replace)
    _check_one_line_and_intact(run_dir, status, out, before, reason, "make the directory writable")
    assert not (run_dir / "metrics.json").exists()
