"""Safe output directories for saved corpora.

A corpus is written into a fresh temporary directory beside its target and then put in
place.  Three rules protect what is already on disk:

* only a directory that is empty, or that holds a fastprob corpus and nothing else (a
  ``manifest.json`` of format ``fastprob-corpus`` plus ``shard-NNNNN.fpc`` files), is
  ever replaced; anything else raises :class:`OutputExistsError` before any work is done
  and again just before the swap;
* the old corpus is never deleted before the new one is in place: on Linux the two
  directories are swapped in one ``renameat2(RENAME_EXCHANGE)`` call, elsewhere (or on
  file systems without it) the old one is first renamed aside, so a crash leaves either
  the old corpus, the new one, or the old one under ``.NAME.old-*`` beside it;
* new directories and files get the permissions the umask allows (not the 0700 / 0600
  of :mod:`tempfile`), so workers running as another user on shared storage can read them.
"""
from __future__ import annotations

import ctypes
import ctypes.util
import errno
import json
import os
import re
import secrets
import shutil

from .._io import current_umask  # noqa: F401  (re-exported)
from .corpus import CorpusError

MANIFEST = "manifest.json"
SHARD_NAME = re.compile(r"shard-[0-9]{5,9}\.fpc")


class OutputExistsError(CorpusError):
    """The output path holds something that is not a fastprob corpus."""


def _is_corpus_dir(path: str) -> tuple[bool, list[str]]:
    """(holds a fastprob manifest, names of entries fastprob would not have written)."""
    names = sorted(os.listdir(path))
    foreign = [n for n in names if n != MANIFEST and not SHARD_NAME.fullmatch(n)]
    if MANIFEST not in names:
        return False, foreign
    try:
        with open(os.path.join(path, MANIFEST), encoding="utf-8") as f:
            ok = json.load(f).get("format") == "fastprob-corpus"
    except (OSError, ValueError, AttributeError):
        ok = False
    return ok, foreign


def check_target(path) -> None:
    """Raise :class:`OutputExistsError` unless ``path`` is absent, an empty directory, or
    a fastprob corpus with nothing else in it (the only things a save may replace)."""
    path = os.fspath(path)
    if not os.path.lexists(path):
        return
    if os.path.islink(path) or not os.path.isdir(path):
        raise OutputExistsError(f"{path} exists and is not a directory; choose another output path")
    if not os.listdir(path):
        return
    is_corpus, foreign = _is_corpus_dir(path)
    if not is_corpus:
        raise OutputExistsError(
            f"{path} exists and is not a fastprob corpus (no fastprob manifest.json); refusing to "
            "replace it: choose another output directory, or remove it yourself if it is disposable")
    if foreign:
        shown = ", ".join(foreign[:5]) + (" ..." if len(foreign) > 5 else "")
        raise OutputExistsError(
            f"{path} holds a fastprob corpus but also files fastprob did not write ({shown}); "
            "refusing to replace it: move those files out or choose another output directory")


def make_temp_dir(target) -> str:
    """A new empty directory beside ``target`` with umask permissions (0777 & ~umask)."""
    target = os.path.abspath(os.fspath(target))
    parent, base = os.path.split(target)
    os.makedirs(parent, exist_ok=True)
    for _ in range(100):
        tmp = os.path.join(parent, f".{base}.tmp-{secrets.token_hex(4)}")
        try:
            os.mkdir(tmp, 0o777)  # mkdir applies the umask itself
            return tmp
        except FileExistsError:
            continue
    raise OSError(f"cannot create a temporary directory beside {target}")


_RENAME_EXCHANGE = 2
_AT_FDCWD = -100


def _exchange(a: str, b: str) -> bool:
    """Swap two paths atomically (Linux renameat2); False when unsupported here."""
    if not hasattr(os, "sched_getaffinity"):  # not Linux
        return False
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
        fn = libc.renameat2
    except (OSError, AttributeError):
        return False
    fn.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_int, ctypes.c_char_p, ctypes.c_uint]
    if fn(_AT_FDCWD, os.fsencode(a), _AT_FDCWD, os.fsencode(b), _RENAME_EXCHANGE) == 0:
        return True
    err = ctypes.get_errno()
    if err in (errno.EINVAL, errno.ENOSYS, errno.ENOTSUP, errno.EOPNOTSUPP):
        return False
    raise OSError(err, os.strerror(err), b)


def install(tmpdir: str, target) -> None:
    """Put the finished directory ``tmpdir`` at ``target``; the old one (if any) is removed
    only after the new one is in place."""
    target = os.path.abspath(os.fspath(target))
    check_target(target)  # again: the directory may have changed during a long build
    if not os.path.lexists(target):
        os.rename(tmpdir, target)
        return
    if _exchange(tmpdir, target):
        _remove(tmpdir)  # now holds the old corpus
        return
    parent, base = os.path.split(target)
    old = os.path.join(parent, f".{base}.old-{secrets.token_hex(4)}")
    os.rename(target, old)
    try:
        os.rename(tmpdir, target)
    except BaseException:
        os.rename(old, target)
        raise
    _remove(old)


def _remove(path: str) -> None:
    shutil.rmtree(path, ignore_errors=True)


def leftover_old(target) -> list[str]:
    """Old corpora renamed aside by an interrupted save (non-Linux fallback), newest first."""
    target = os.path.abspath(os.fspath(target))
    parent, base = os.path.split(target)
    try:
        names = [n for n in os.listdir(parent) if n.startswith(f".{base}.old-")]
    except OSError:
        return []
    paths = [os.path.join(parent, n) for n in names]
    return sorted(paths, key=os.path.getmtime, reverse=True)
