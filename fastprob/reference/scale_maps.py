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
    soft clamp of the log-scale as first published);
``clamp_atan``: g = clamp * 0.636 * atan(s), clamp = ``const`` (default 2.0; the
    ``clamp_activation="ATAN"`` of FrEIA 0.2's coupling blocks, which no longer divides s by
    the clamp before the atan);
``softclip``: g = s / (1 + |s| / bound), bound = ``const`` (default -log(1e-3); zuko's
    ``MonotonicAffineTransform``, whose ``slope`` is exp(-bound)).
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F

SCALE_MAPS = ("exp", "tanh", "bounded", "sigmoid", "sigmoid_eps", "rsigmoid", "atan", "clamp_atan", "softclip")
# the scale maps that take a constant, with its default
CONST_DEFAULTS = {"sigmoid_eps": 1e-3, "atan": 2.0, "clamp_atan": 2.0, "softclip": -math.log(1e-3)}
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
    if name in ("atan", "clamp_atan") and not c > 0.0:
        raise ValueError(f"the {name} constant (clamp) must be > 0, got {c}")
    if name == "softclip" and not c > 0.0:
        raise ValueError(f"the softclip constant (bound = -log(slope)) must be > 0, got {c}; "
                         f"a zuko slope must lie in (0, 1)")
    return c


def apply_scale_map(s: torch.Tensor, name: str, a=None, const=None) -> torch.Tensor:
    """g(s), same shape as ``s``; ``a`` (tanh only) broadcasts against ``s``; ``const`` is
    eps (``sigmoid_eps``), clamp (``atan``, ``clamp_atan``) or bound (``softclip``)."""
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
    if name == "clamp_atan":
        return (c * ATAN_FACTOR) * torch.atan(s)
    if name == "softclip":
        return s / (1.0 + torch.abs(s) / c)
    return (c * ATAN_FACTOR) * torch.atan(s / c)
