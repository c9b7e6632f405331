"""Swap drop-in classes into a peer library's modules (and back)."""
from __future__ import annotations

import importlib


class Patcher:
    """Replaces attributes ``name`` of the listed peer modules by drop-ins, remembering the originals."""

    def __init__(self, targets: dict[str, list[str]], dropins: dict[str, type]):
        self.targets, self.dropins, self._saved = targets, dropins, []

    def install(self) -> None:
        """Make the peer's modules hand out the drop-ins (idempotent)."""
        if self._saved:
            return
        for modname, names in self.targets.items():
            mod = importlib.import_module(modname)
            for name in names:
                if hasattr(mod, name):
                    self._saved.append((mod, name, getattr(mod, name)))
                    setattr(mod, name, self.dropins[name])

    def uninstall(self) -> None:
        """Restore the peer's own classes."""
        while self._saved:
            mod, name, orig = self._saved.pop()
            setattr(mod, name, orig)
