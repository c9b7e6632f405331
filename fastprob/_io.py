"""Atomic file writes: write to a temporary file beside the target, rename on success.

An interrupted write never leaves a half-written file under the final name.  The file
gets the permissions a plain ``open`` would (0666 minus the umask), not the 0600 that
:func:`tempfile.mkstemp` uses, so readers running as another user can open it.
"""
from __future__ import annotations

import os
import tempfile
from contextlib import contextmanager


@contextmanager
def atomic_write(path, mode="w", encoding="utf-8"):
    """Open a temporary file next to ``path``; rename it into place only on success."""
    path = os.fspath(path)
    d = os.path.dirname(os.path.abspath(path))
    os.makedirs(d, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=os.path.basename(path) + ".tmp", dir=d)
    try:
        os.fchmod(fd, 0o666 & ~current_umask())
        with os.fdopen(fd, mode, encoding=None if "b" in mode else encoding,
                       newline=None if "b" in mode else "") as f:
            yield f
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def current_umask() -> int:
    """The process umask, read without changing it where the OS allows (Linux /proc)."""
    try:
        with open("/proc/self/status", encoding="ascii") as f:
            for line in f:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError):
        pass
    old = os.umask(0o022)  # elsewhere: set and restore (not thread-safe, but brief)
    os.umask(old)
    return old


def atomic_torch_save(obj, path) -> None:
    """``torch.save`` through :func:`atomic_write`."""
    from ._optional import require

    torch = require("torch", "flows", "saving a flow checkpoint")

    with atomic_write(path, "wb") as f:
        torch.save(obj, f)
