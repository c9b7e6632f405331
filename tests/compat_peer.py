"""Fetch a peer library's own test files from PyPI at test time and run them against fastprob's
drop-ins (helpers of tests/test_compat_*.py; nothing of the peers is stored in this repository).

The files come from the sdist or wheel of the *installed* version, via ``pip download`` into
pytest's cache directory (or ``$FASTPROB_COMPAT_CACHE``); a download failure (offline, no
PyPI) skips with the reason.  The peer's tests run in a subprocess (their ``tests`` package
name would clash with ours) with ``-p fastprob.compat.pytest_plugin``, which installs the
drop-ins before collection and writes the fast-path counters.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
import tarfile
import zipfile
from importlib import metadata
from pathlib import Path
from xml.etree import ElementTree

import pytest


def _cache_dir(request) -> Path:
    env = os.environ.get("FASTPROB_COMPAT_CACHE")
    if env:
        p = Path(env)
    elif getattr(request.config, "cache", None) is not None:
        p = Path(request.config.cache.mkdir("fastprob-compat"))
    else:
        p = request.getfixturevalue("tmp_path_factory").mktemp("fastprob-compat")
    p.mkdir(parents=True, exist_ok=True)
    return p


def fetch_peer_files(request, dist: str, members: list[str], sdist: bool) -> Path:
    """Directory holding ``members`` (paths inside the peer's distribution, top folder of an
    sdist stripped) of the installed version of ``dist``; downloads it on first use."""
    version = metadata.version(dist)
    cache = _cache_dir(request)
    dest = cache / f"{dist}-{version}-{'sdist' if sdist else 'wheel'}"
    if all((dest / m).exists() for m in members):
        return dest
    dl = cache / "downloads"
    cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "-q", "-d", str(dl), f"{dist}=={version}",
           "--no-binary" if sdist else "--only-binary", ":all:"]
    try:
        r = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    except subprocess.TimeoutExpired:
        pytest.skip(f"pip download of {dist}=={version} timed out (PyPI unreachable?)")
    if r.returncode != 0:
        pytest.skip(f"cannot pip download {dist}=={version} (PyPI unreachable?): {r.stderr.strip()[-300:]}")
    stem = dist.replace("-", "_").lower()
    archives = [p for p in dl.iterdir() if p.name.replace("-", "_").lower().startswith(f"{stem}_{version}")]
    if not archives:
        raise RuntimeError(f"pip download of {dist}=={version} left no archive in {dl}")
    archive = archives[0]
    dest.mkdir(parents=True, exist_ok=True)
    if archive.name.endswith((".tar.gz", ".tgz")):
        with tarfile.open(archive) as tf:
            for m in tf.getmembers():
                rel = m.name.split("/", 1)[1] if "/" in m.name else ""
                if m.isfile() and any(rel == w or rel.startswith(w.rstrip("/") + "/") for w in members):
                    out = dest / rel
                    out.parent.mkdir(parents=True, exist_ok=True)
                    out.write_bytes(tf.extractfile(m).read())
    else:
        with zipfile.ZipFile(archive) as zf:
            for name in zf.namelist():
                if any(name == w or name.startswith(w.rstrip("/") + "/") for w in members):
                    out = dest / name
                    out.parent.mkdir(parents=True, exist_ok=True)
                    out.write_bytes(zf.read(name))
    missing = [m for m in members if not (dest / m).exists()]
    if missing:
        raise RuntimeError(f"{archive.name} has no {missing}")
    return dest


def run_peer_tests(cwd: Path, args: list[str], adapters: list[str], tmp_path: Path, timeout=600):
    """Run pytest on the peer's files with the drop-ins installed.

    Returns ({"Class::test": "passed" | "failed" | "skipped"}, counters, pytest output)."""
    xml, cnt = tmp_path / "peer.xml", tmp_path / "counters.json"
    cmd = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-p", "fastprob.compat.pytest_plugin",
           f"--junitxml={xml}", f"--fastprob-counters={cnt}", "--rootdir", str(cwd)]
    for a in adapters:
        cmd += ["--fastprob-compat", a]
    env = dict(os.environ, PYTHONPATH=str(cwd) + os.pathsep + os.environ.get("PYTHONPATH", ""))
    r = subprocess.run(cmd + args, cwd=cwd, capture_output=True, text=True, timeout=timeout, env=env)
    if not xml.exists():
        raise RuntimeError(f"the peer's tests did not run:\n{r.stdout[-3000:]}\n{r.stderr[-3000:]}")
    outcomes = {}
    for tc in ElementTree.parse(xml).getroot().iter("testcase"):
        key = f"{tc.get('classname').rsplit('.', 1)[-1]}::{tc.get('name')}"
        kinds = {c.tag for c in tc}
        outcomes[key] = ("failed" if kinds & {"failure", "error"} else
                         "skipped" if "skipped" in kinds else "passed")
    counts = json.loads(cnt.read_text()) if cnt.exists() else {}
    return outcomes, counts, r.stdout[-6000:]
