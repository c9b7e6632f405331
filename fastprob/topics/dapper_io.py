"""Persistence of the DAPPER estimator: model files, checkpoints and their validation.

A model file is one ``.npz`` archive written atomically: the fitted arrays plus a
``meta`` entry (JSON bytes) with the format name and version, the constructor parameters,
the vocabulary and author names, the epoch counters and the history.  Checkpoints written
during ``fit`` also hold the warm-start locals (``warm_m``, ``warm_v``, ``warm_tau``), so a
resumed fit continues exactly as an uninterrupted one.  Files are read without pickle.
"""
from __future__ import annotations

import glob
import json
import os

import numpy as np

from .._io import atomic_write

MODEL_FORMAT = "fastprob-dapper"
MODEL_VERSION = 1
# the fitted arrays of a model (attribute names); stored without their leading underscore
STATE_ARRAYS = ("lambda_", "delta_", "alpha_", "alpha_var_", "n_stat_", "M_stat_", "time_values_",
                "n_docs_t_", "_alpha_cov_off", "_alpha_logdet")
_WARM_KEYS = ("warm_m", "warm_v", "warm_tau")


def _file_key(attr: str) -> str:
    return attr.strip("_") if attr.startswith("_") else attr


def save_model(model, path, with_locals: bool = False) -> None:
    """Write ``model`` (parameters, fitted state, history) atomically to ``path`` (.npz)."""
    model._check_fitted()
    meta = {"format": MODEL_FORMAT, "version": MODEL_VERSION, "params": model.get_params(),
            "vocab": model.vocab_, "author_names": model.author_names_, "epoch": model.epoch_,
            "n_updates": model.n_updates_, "history": model.history_,
            "n_docs_total": model.n_docs_total_,
            "rng_seed": getattr(model, "_rng_seed_for_resume", None),
            "stop_reason": getattr(model, "stop_reason_", None),
            "time_info": getattr(model, "time_info_", None),
            "doc_noise_fitted": getattr(model, "doc_noise_", None),
            "eta_fitted": getattr(model, "eta_fitted_", None)}
    arrays = {_file_key(k): getattr(model, k) for k in STATE_ARRAYS}
    if with_locals and getattr(model, "_warm_", None) is not None:
        arrays.update(zip(_WARM_KEYS, model._warm_))
    with atomic_write(path, "wb") as f:
        np.savez(f, meta=np.frombuffer(json.dumps(meta, default=json_scalar).encode(), dtype=np.uint8),
                 **arrays)


def load_model(cls, path):
    """A ``cls`` instance read from a file written by :func:`save_model`."""
    meta, arrays = read_model(path)
    params = dict(meta["params"])
    # where a fit runs is the caller's choice: a model file never points fit() at a network
    # address (or a cluster backend) of its own
    for k in ("address", "backend"):
        params[k] = None
    known = set(cls().get_params())
    unknown = sorted(set(params) - known)
    if unknown:
        raise ValueError(f"{path}: unknown model parameters {unknown} (written by a newer fastprob?)")
    m = cls(**params)
    set_state(m, meta, arrays)
    return m


def load_checkpoint(model, path) -> None:
    """Restore a checkpoint into ``model``, which must have the same K and P."""
    meta, arrays = read_model(path)
    mine = model.get_params()
    for key, what in (("n_topics", "K"), ("n_personas", "P")):
        if meta["params"][key] != mine[key]:
            raise ValueError(f"the checkpoint {path} was made with {what} = {meta['params'][key]}, this model "
                             f"has {what} = {mine[key]}: resume with the same settings or start a new run "
                             "(a new --out directory, or drop --resume)")
    set_state(model, meta, arrays)


def set_state(model, meta: dict, arrays: dict) -> None:
    """Put the fitted state of a model file (``meta``, ``arrays``) on ``model``."""
    for k in STATE_ARRAYS:
        setattr(model, k, arrays[_file_key(k)])
    model.vocab_, model.author_names_ = list(meta["vocab"]), list(meta["author_names"])
    model._warm_ = tuple(arrays[k] for k in _WARM_KEYS) if _WARM_KEYS[0] in arrays else None
    model.epoch_, model.n_updates_ = int(meta["epoch"]), int(meta["n_updates"])
    model.history_ = list(meta["history"])
    model.n_docs_total_ = float(meta["n_docs_total"])
    model._rng_seed_for_resume = meta.get("rng_seed")
    if meta.get("stop_reason"):
        model.stop_reason_ = meta["stop_reason"]
    if meta.get("time_info"):
        model.time_info_ = meta["time_info"]
    model.doc_noise_ = meta.get("doc_noise_fitted")
    model.eta_fitted_ = meta.get("eta_fitted")


def remove_stale_temporaries(path) -> None:
    """Delete ``<path>.tmp*`` files that a write killed mid-way (kill -9) left behind; only
    names made by fastprob's atomic writer for this very path are touched."""
    path = os.fspath(path)
    for tmp in glob.glob(glob.escape(path) + ".tmp*"):
        try:
            os.unlink(tmp)
        except OSError:
            pass


def json_scalar(x):
    """JSON for NumPy scalars that keeps their kind (np.int64(3) -> 3, not 3.0)."""
    if isinstance(x, np.bool_):
        return bool(x)
    if isinstance(x, np.integer):
        return int(x)
    if isinstance(x, np.floating):
        return float(x)
    raise TypeError(f"cannot store {type(x).__name__} in a DAPPER model file")


def read_model(path):
    """(meta, arrays) of a model file, after checking format, version, finiteness and shapes."""
    try:
        with np.load(path, allow_pickle=False) as z:
            data = {k: z[k] for k in z.files}
    except FileNotFoundError:
        raise FileNotFoundError(f"no DAPPER model at {path}") from None
    except Exception as exc:
        raise ValueError(f"{path} is not a readable DAPPER model file ({exc}); it may be truncated") from None
    if "meta" not in data:
        raise ValueError(f"{path} is not a DAPPER model file (no metadata)")
    try:
        meta = json.loads(bytes(data.pop("meta")).decode())
    except ValueError:
        raise ValueError(f"{path}: model metadata is corrupted") from None
    if meta.get("format") != MODEL_FORMAT:
        raise ValueError(f"{path} is not a DAPPER model file")
    if meta.get("version") != MODEL_VERSION:
        raise ValueError(f"{path} has model format version {meta.get('version')}; expected {MODEL_VERSION}")
    for k, a in data.items():
        if a.dtype.kind == "f" and not np.all(np.isfinite(a)):
            raise ValueError(f"{path}: array {k!r} contains NaN or inf; the file is corrupted or training "
                             "diverged - retrain or load an earlier checkpoint")
    K, P = meta["params"]["n_topics"], meta["params"]["n_personas"]
    lam, dl, al = data["lambda_"], data["delta_"], data["alpha_"]
    if lam.shape != (K, len(meta["vocab"])) or dl.shape != (len(meta["author_names"]), P) \
            or al.shape[1:] != (P, K):
        raise ValueError(f"{path}: array shapes disagree with the model parameters (corrupted file)")
    return meta, data
