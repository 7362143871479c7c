"""A trained twin cohort on disk: parameters (orbax) and everything needed to use them (JSON).

``model/`` is self-contained: the architecture, the axis orders (variables, intervention kinds,
static covariates and their category levels), subject ids, each subject's time origin and the
grid step, the scalers, the calibration factors, the personalization options, the run's
fingerprint and config, and the twinjax version that wrote it.

It is written whole or not at all (into a new directory beside it, which then takes its place)
and ends with ``manifest.json`` (size and SHA-256 of every file): :func:`load` refuses a damaged
or partly written model naming the file (:class:`~twinjax.runtime.manifest.DamagedModelError`).
"""

import json
from dataclasses import asdict
from pathlib import Path
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import orbax.checkpoint as ocp

from twinjax.data import NormStats, Scalers
from twinjax.runtime.checkpoints import write_failure
from twinjax.runtime.files import RunWriteError, atomic_write_text, replacing_dir
from twinjax.runtime.loop import this_process_only
from twinjax.runtime.manifest import (
    check_replaceable,
    damaged,
    read_json,
    verify_manifest,
    write_manifest,
)
from twinjax.train import PersonalizeOptions
from twinjax.twins import FlaxSpec, Params, Spec, TwinSpec, init_params

FORMAT = 1  # bumped when the layout of model/ changes
META_FILE = "meta.json"


class TwinBundle(NamedTuple):
    """Everything a trained cohort of twins needs to forecast, personalize and update.

    ``personal``, ``calibration["personal*"]`` and per-individual scalers have one row per entry of
    ``subject_ids``; ``t0[i]`` is subject i's time origin (grid time ``t0 + k * step``).
    """

    spec: Spec
    population: Params
    personal: Params
    scalers: Scalers
    # interval scale factors: one step ahead "population" [F], "personal" [N, F]; per horizon
    # "population_h" [H, F], "personal_h" [N, H, F] (absent from bundles saved before them:
    # ``use.horizon_factors`` then uses the one-step factor at every horizon)
    calibration: dict
    subject_ids: tuple
    t0: np.ndarray
    step: float
    variables: tuple
    intervention_kinds: tuple
    static_names: tuple
    normalization: str  # "population", "individual" or "none"
    history: int  # steps of data each one-step forecast sees
    options: PersonalizeOptions  # how personalize/update fine-tune
    fingerprint: dict
    config: dict
    version: str
    static_levels: dict | None = None  # categorical covariate -> levels (one-hot order)
    time: dict | None = None  # how times were read: {"kind": "number"|"datetime", "zoned": ...}

    @property
    def n_subjects(self) -> int:
        return len(self.subject_ids)

    def index(self, subject) -> int | None:
        """Row of ``subject`` (matched as a string), or None for a subject the bundle lacks."""
        names = [str(s) for s in self.subject_ids]
        return names.index(str(subject)) if str(subject) in names else None


def _arrays(bundle: TwinBundle) -> dict:
    return {
        "population": bundle.population,
        "personal": bundle.personal,
        "scalers": {
            "mean": bundle.scalers.values.mean,
            "std": bundle.scalers.values.std,
            "interventions": bundle.scalers.interventions,
            "static_mean": bundle.scalers.static_mean,
            "static_std": bundle.scalers.static_std,
        },
        "calibration": {k: jnp.asarray(v) for k, v in bundle.calibration.items()},
    }


def _flat(tree) -> dict:
    leaves = jax.tree_util.tree_flatten_with_path(tree)[0]
    name = lambda k: str(getattr(k, "key", getattr(k, "name", k)))
    return {"/".join(name(k) for k in path): np.asarray(x) for path, x in leaves}


def save_bundle(bundle: TwinBundle, directory: Path) -> None:
    """Writes ``directory/params`` (orbax), ``directory/meta.json`` and, last,
    ``directory/manifest.json``, into a new directory that then replaces ``directory``.

    Empty arrays (a cohort without static covariates has ``[0]``-shaped scalers) are recorded
    by shape in the metadata, not in the checkpoint (orbax cannot save zero-size arrays).

    Raises:
      RunWriteError: the storage refused a write; ``directory`` is left as it was.
      FileExistsError: ``directory`` holds other files than a saved model.
    """
    directory = Path(directory).absolute()
    check_replaceable(directory, {"params", META_FILE})
    flat = _flat(_arrays(bundle))
    stored = {k: v for k, v in flat.items() if v.size}
    with replacing_dir(directory) as new:
        _save_params(new / "params", stored)
        atomic_write_text(new / META_FILE, json.dumps(_meta(bundle, flat), indent=1, default=str))
        write_manifest(new)


def _save_params(path: Path, stored: dict) -> None:
    # (a refused directory is reported at once, not after orbax's threads time out waiting)
    sync = ocp.AsyncOptions(create_directories_asynchronously=False)
    try:
        # one process writes a model (the gathered twins, under several processes)
        with ocp.StandardCheckpointer(
            async_options=sync, multiprocessing_options=this_process_only()
        ) as ckptr:
            ckptr.save(path, stored)
    except (OSError, ValueError) as e:
        failure = write_failure(e)
        if failure is None:
            raise
        raise RunWriteError(failure[1] or path, failure[0]) from e


def _meta(bundle: TwinBundle, flat: dict) -> dict:
    return {
        "format": FORMAT,
        "version": bundle.version,
        "spec": _spec_meta(bundle.spec),
        "arrays": {k: [list(v.shape), v.dtype.str] for k, v in flat.items()},
        "n_personal": bundle.n_subjects,
        "subject_ids": [_jsonable(s) for s in bundle.subject_ids],
        "t0": np.asarray(bundle.t0, np.float64).tolist(),
        "step": bundle.step,
        "variables": list(bundle.variables),
        "intervention_kinds": list(bundle.intervention_kinds),
        "static_names": list(bundle.static_names),
        "normalization": bundle.normalization,
        "history": bundle.history,
        "options": bundle.options._asdict(),
        "fingerprint": bundle.fingerprint,
        "config": bundle.config,
        "static_levels": bundle.static_levels or {},
        "time": bundle.time or {},
    }


def _spec_meta(spec: Spec) -> dict:
    """The spec as JSON: a flax twin's with ``"network": "flax"`` (its module's import string
    and kwargs, from which :func:`load` rebuilds the module)."""
    return {"network": "flax", **asdict(spec)} if isinstance(spec, FlaxSpec) else asdict(spec)


def _spec(meta: dict) -> Spec:
    meta = dict(meta)
    return FlaxSpec(**meta) if meta.pop("network", None) == "flax" else TwinSpec(**meta)


def _jsonable(x: Any):
    return x.item() if isinstance(x, np.generic) else x


def model_dir(path: str | Path) -> Path:
    """``path`` itself if it holds a saved bundle, else ``path/model`` (a run directory)."""
    path = Path(path)
    for candidate in (path, path / "model"):
        if (candidate / META_FILE).exists():
            return candidate
    raise FileNotFoundError(
        f"{path} holds no saved twins (no {META_FILE} in it or in {path / 'model'}); pass a run "
        "directory written by `python -m twinjax` (this version) or its model/ folder"
    )


def load(path: str | Path) -> TwinBundle:
    """The twins saved in a run directory (or its ``model/`` folder).

    Raises:
      FileNotFoundError: nothing saved there. ValueError: written in another format.
      ImportError: a flax twin's module (its import string) no longer imports.
      DamagedModelError: a file is missing, truncated or changed since it was saved (naming it;
        a model saved without a manifest, by an older twinjax, loads with a warning).
    """
    directory = model_dir(path).absolute()
    verify_manifest(directory)
    meta = read_json(directory / META_FILE)
    if meta.get("format") != FORMAT:
        raise ValueError(
            f"{directory} was written in model format {meta.get('format')} by twinjax "
            f"{meta.get('version')}; this twinjax reads format {FORMAT}: retrain, or load it with "
            "the version that wrote it"
        )
    spec = _spec(meta["spec"])  # a flax twin's module is imported and built here
    shapes = {k: (tuple(s), np.dtype(d)) for k, (s, d) in meta["arrays"].items()}
    target = {k: jax.ShapeDtypeStruct(s, d) for k, (s, d) in shapes.items() if np.prod(s) > 0}
    try:
        with ocp.StandardCheckpointer() as ckptr:
            stored = ckptr.restore(directory / "params", target)
    except (OSError, ValueError) as e:  # (past the manifest: a model saved without one)
        raise damaged(directory / "params", f"does not read back ({type(e).__name__}: "
                      f"{str(e).splitlines()[0][:300]})") from e  # fmt: skip
    flat = {k: stored[k] if k in stored else np.zeros(s, d) for k, (s, d) in shapes.items()}
    like = init_params(jax.random.key(0), spec)
    tree = lambda prefix: jax.tree.unflatten(
        jax.tree.structure(like), [flat[f"{prefix}/{k}"] for k in _flat(like)]
    )
    scalers = Scalers(
        NormStats(flat["scalers/mean"], flat["scalers/std"]),
        flat["scalers/interventions"],
        flat["scalers/static_mean"],
        flat["scalers/static_std"],
    )
    return TwinBundle(
        spec=spec,
        population=tree("population"),
        personal=tree("personal"),
        scalers=scalers,
        calibration={
            k.split("/", 1)[1]: np.asarray(v) for k, v in flat.items() if k.startswith("calib")
        },
        subject_ids=tuple(meta["subject_ids"]),
        t0=np.asarray(meta["t0"], np.float64),
        step=meta["step"],
        variables=tuple(meta["variables"]),
        intervention_kinds=tuple(meta["intervention_kinds"]),
        static_names=tuple(meta["static_names"]),
        normalization=meta["normalization"],
        history=meta["history"],
        options=PersonalizeOptions(**{"adapt": "all", **meta["options"]}),  # older: all
        fingerprint=meta["fingerprint"],
        config=meta["config"],
        version=meta["version"],
        static_levels=meta.get("static_levels") or {},
        time=meta.get("time") or {},
    )
