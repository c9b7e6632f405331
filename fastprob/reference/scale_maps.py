"""Coupling scale maps g(s) (PyTorch references); the coupling multiplies by exp(g(s)).

The four of flows-model.md section 1:

``exp``: g = s;  ``tanh``: g = a * tanh(s);  ``bounded``: g = 2 tanh(s / 2);
``sigmoid``: exp(g) = sigmoid(s + 2), i.e. g = logsigmoid(s + 2) (Glow).

and three used by other flow libraries (so their layers can run on the fused op):

``sigmoid_eps``: exp(g) = sigmoid(s + 2) + eps, eps = ``const`` (default 1e-3; nflows'
    ``AffineCouplingTransform``);
``rsigmoid``: exp(g) = 1 / sigmoid(s + 2), i.e. g = -logsigmoid(s + 2) (normflows'
    ``scale_map="sigmoid"``, which divides by the sigmoid in its latent -> data direction);
``atan``: g = clamp * 0.636 * atan(s / clamp), clamp = ``const`` (default 2.0; FrEIA's
    soft clamp of the log-scale).
"""
from __future__ import annotations

import torch
import torch.nn.functional as F

SCALE_MAPS = ("exp", "tanh", "bounded", "sigmoid", "sigmoid_eps", "rsigmoid", "atan")
# the scale maps that take a constant, with its default
CONST_DEFAULTS = {"sigmoid_eps": 1e-3, "atan": 2.0}
ATAN_FACTOR = 0.636  # FrEIA's rounding of 2 / pi


def check_scale_map(name: str) -> None:
    if name not in SCALE_MAPS:
        raise ValueError(f"unknown scale map {name!r}; choose one of {SCALE_MAPS}")


def scale_const(name: str, const=None) -> float:
    """The constant of ``name`` (eps or clamp) as a float, checked; 0.0 for maps without one."""
    if name not in CONST_DEFAULTS:
        if const is not None:
            raise ValueError(f"scale map {name!r} takes no constant, got const={const!r}; only "
                             f"{tuple(CONST_DEFAULTS)} do")
        return 0.0
    c = CONST_DEFAULTS[name] if const is None else float(const)
    if name == "sigmoid_eps" and not c >= 0.0:
        raise ValueError(f"the sigmoid_eps constant (eps) must be >= 0, got {c}")
    if name == "atan" and not c > 0.0:
        raise ValueError(f"the atan constant (clamp) must be > 0, got {c}")
    return c


def apply_scale_map(s: torch.Tensor, name: str, a=None, const=None) -> torch.Tensor:
    """g(s), same shape as ``s``; ``a`` (tanh only) broadcasts against ``s``; ``const`` is
    eps (``sigmoid_eps``) or clamp (``atan``)."""
    check_scale_map(name)
    c = scale_const(name, const)
    if name == "exp":
        return s
    if name == "tanh":
        return (1.0 if a is None else a) * torch.tanh(s)
    if name == "bounded":
        return 2.0 * torch.tanh(s / 2.0)
    if name == "sigmoid":
        return F.logsigmoid(s + 2.0)
    if name == "sigmoid_eps":
        return torch.log(torch.sigmoid(s + 2.0) + c)
    if name == "rsigmoid":
        return -F.logsigmoid(s + 2.0)
    return (c * ATAN_FACTOR) * torch.atan(s / c)
