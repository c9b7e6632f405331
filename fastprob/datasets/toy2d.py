"""2-D toy densities (thesis figures 13-15): samplers and the Rezende-Mohamed energies."""
from __future__ import annotations

import math

import numpy as np
import torch

TOYS = ("8gaussians", "moons", "spirals", "checkerboard", "pinwheel")
ENERGIES = ("U1", "U2", "U3", "U4")


def sample_toy(name: str, n: int, seed=0) -> np.ndarray:
    """n points (n, 2) from a named 2-D toy density, scaled to roughly [-4, 4]^2."""
    rng = np.random.default_rng(seed)
    if name == "8gaussians":
        ang = rng.integers(0, 8, n) * (2 * math.pi / 8)
        centers = np.stack([np.cos(ang), np.sin(ang)], 1) * 2.8
        return centers + 0.25 * rng.standard_normal((n, 2))
    if name == "moons":
        t = rng.random(n) * math.pi
        upper = rng.random(n) < 0.5
        x = np.where(upper, np.cos(t), 1 - np.cos(t))
        y = np.where(upper, np.sin(t), 0.5 - np.sin(t))
        pts = np.stack([x - 0.5, y - 0.25], 1) * 2.2
        return pts + 0.1 * rng.standard_normal((n, 2))
    if name == "spirals":
        t = np.sqrt(rng.random(n)) * 3 * math.pi
        sign = np.where(rng.random(n) < 0.5, 1.0, -1.0)
        pts = sign[:, None] * np.stack([t * np.cos(t), t * np.sin(t)], 1) / 3.0
        return pts + 0.15 * rng.standard_normal((n, 2))
    if name == "checkerboard":
        # uniform on the "black" 2x2 squares of a 4x4 board over [-4, 4]^2 (rejection sampling)
        out = np.empty((0, 2))
        while out.shape[0] < n:
            pts = rng.random((2 * n, 2)) * 8 - 4
            keep = (np.floor(pts[:, 0] / 2) + np.floor(pts[:, 1] / 2)) % 2 == 0
            out = np.concatenate([out, pts[keep]])
        return out[:n]
    if name == "pinwheel":
        k, rate = 5, 0.25
        labels = rng.integers(0, k, n)
        feats = rng.standard_normal((n, 2)) * np.array([0.3, 0.05]) + np.array([1.0, 0.0])
        ang = labels * 2 * math.pi / k + rate * np.exp(feats[:, 0])
        rot = np.stack([np.cos(ang), -np.sin(ang), np.sin(ang), np.cos(ang)], 1).reshape(n, 2, 2)
        return 2.5 * np.einsum("ni,nij->nj", feats, rot)
    raise ValueError(f"unknown toy density {name!r}; choose one of {TOYS}")


def energy(name: str, z: torch.Tensor) -> torch.Tensor:
    """The unnormalized target -log p(z) of Rezende & Mohamed (2015), U1..U4, for z (B, 2).

    U2-U4 do not depend on how far z1 goes (exp(-U) is not integrable: reverse KL would
    reward spreading z1 without end), so they get a soft box on z1, (z1 / 4)^8 / 2, which
    is ~0 inside the [-4, 4] window the densities are drawn on.
    """
    z1, z2 = z[:, 0], z[:, 1]
    w1 = torch.sin(2 * math.pi * z1 / 4)
    box = 0.5 * (z1 / 4) ** 8
    if name == "U1":
        r = torch.linalg.norm(z, dim=1)
        return 0.5 * ((r - 2) / 0.4) ** 2 - torch.logsumexp(
            torch.stack([-0.5 * ((z1 - 2) / 0.6) ** 2, -0.5 * ((z1 + 2) / 0.6) ** 2]), 0)
    if name == "U2":
        return 0.5 * ((z2 - w1) / 0.4) ** 2 + box
    if name == "U3":
        w2 = 3 * torch.exp(-0.5 * ((z1 - 1) / 0.6) ** 2)
        return -torch.logsumexp(torch.stack([-0.5 * ((z2 - w1) / 0.35) ** 2,
                                             -0.5 * ((z2 - w1 + w2) / 0.35) ** 2]), 0) + box
    if name == "U4":
        w3 = 3 * torch.sigmoid((z1 - 1) / 0.3)
        return -torch.logsumexp(torch.stack([-0.5 * ((z2 - w1) / 0.4) ** 2,
                                             -0.5 * ((z2 - w1 + w3) / 0.35) ** 2]), 0) + box
    raise ValueError(f"unknown energy {name!r}; choose one of {ENERGIES}")
