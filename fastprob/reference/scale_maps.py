"""The four coupling scale maps g(s) of flows-model.md section 1 (PyTorch references).

``exp``: g = s;  ``tanh``: g = a * tanh(s);  ``bounded``: g = 2 tanh(s / 2);
``sigmoid``: exp(g) = sigmoid(s + 2), i.e. g = logsigmoid(s + 2) (Glow).
"""
from __future__ import annotations

import torch
import torch.nn.functional as F

SCALE_MAPS = ("exp", "tanh", "bounded", "sigmoid")


def check_scale_map(name: str) -> None:
    if name not in SCALE_MAPS:
        raise ValueError(f"unknown scale map {name!r}; choose one of {SCALE_MAPS}")


def apply_scale_map(s: torch.Tensor, name: str, a=None) -> torch.Tensor:
    """g(s), same shape as ``s``; ``a`` (tanh only) broadcasts against ``s``."""
    if name == "exp":
        return s
    if name == "tanh":
        return (1.0 if a is None else a) * torch.tanh(s)
    if name == "bounded":
        return 2.0 * torch.tanh(s / 2.0)
    if name == "sigmoid":
        return F.logsigmoid(s + 2.0)
    check_scale_map(name)
    raise AssertionError
