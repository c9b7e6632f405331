"""Teachers of the student-teacher evaluation (thesis section 6.4): 2-D densities with exact
log-densities and exact samplers, and the LR map pi (quantize the first coordinate).

Each teacher is a mixture of components with closed-form densities:

* ``Arc(centre, radius, sigma, angles)``: y = centre + r (cos t, sin t), t ~ U(angles),
  r ~ N(radius, sigma^2).  The polar map (r, t) -> y is two-to-one when r may be negative
  ((r, t) and (-r, t + pi) meet), so the exact density sums both preimages:
  p(y) = sum N(r; radius, sigma) 1[t in angles] / (|angles| rho), rho = |y - centre|.
* ``Gauss(centre, sigma)``: isotropic Gaussian.
* ``AbsCurve(s, sigma)``: y1 ~ N(0, s^2), y2 = |y1| + sigma eps: the triangular flow
  z -> (s z1, |s z1| + sigma z2), log-determinant log(s sigma).

The cases (``TEACHERS``): circle & cluster, two moons, four circles, abs.
"""
from __future__ import annotations

import math

import numpy as np

_LOG2PI = math.log(2 * math.pi)


def _norm_logpdf(v, mu, sigma):
    return -0.5 * ((v - mu) / sigma) ** 2 - math.log(sigma) - 0.5 * _LOG2PI


class Gauss:
    def __init__(self, centre, sigma):
        self.c, self.sigma = np.asarray(centre, float), float(sigma)

    def sample(self, n, rng):
        return self.c + self.sigma * rng.standard_normal((n, 2))

    def log_prob(self, y):
        return _norm_logpdf(y, self.c, self.sigma).sum(1)


class Arc:
    def __init__(self, centre, radius, sigma, angles=(0.0, 2 * math.pi)):
        self.c, self.R, self.sigma = np.asarray(centre, float), float(radius), float(sigma)
        self.a0, self.a1 = map(float, angles)

    def sample(self, n, rng):
        t = rng.uniform(self.a0, self.a1, n)
        r = self.R + self.sigma * rng.standard_normal(n)
        return self.c + r[:, None] * np.stack([np.cos(t), np.sin(t)], 1)

    def _in_arc(self, t):
        width = self.a1 - self.a0
        if width >= 2 * math.pi - 1e-12:
            return np.ones_like(t, dtype=bool)
        return np.mod(t - self.a0, 2 * math.pi) <= width

    def log_prob(self, y):
        d = y - self.c
        # the 1/rho singularity at the centre carries a mass of order N(0; R, sigma) * 1e-8: nil
        rho = np.maximum(np.hypot(d[:, 0], d[:, 1]), 1e-8)
        t = np.arctan2(d[:, 1], d[:, 0])
        width = self.a1 - self.a0
        terms = []
        for r, tt in ((rho, t), (-rho, t + math.pi)):
            lp = _norm_logpdf(r, self.R, self.sigma) - math.log(width) - np.log(rho)
            terms.append(np.where(self._in_arc(tt), lp, -np.inf))
        return np.logaddexp(*terms)


class AbsCurve:
    def __init__(self, s=1.5, sigma=0.1):
        self.s, self.sigma = float(s), float(sigma)

    def sample(self, n, rng):
        z = rng.standard_normal((n, 2))
        y1 = self.s * z[:, 0]
        return np.stack([y1, np.abs(y1) + self.sigma * z[:, 1]], 1)

    def log_prob(self, y):
        return _norm_logpdf(y[:, 0], 0.0, self.s) + _norm_logpdf(y[:, 1], np.abs(y[:, 0]), self.sigma)


class Teacher:
    """A mixture teacher with exact ``log_prob`` (nats) and ``sample``.

    Parameters
    ----------
    components : list of Gauss / Arc / AbsCurve
    weights : list of float, summing to 1
    quantum : float
        pi(y) = quantum * round(y1 / quantum).
    """

    def __init__(self, name, components, weights=None, quantum=1.0):
        self.name, self.components = name, list(components)
        w = np.full(len(self.components), 1.0 / len(self.components)) if weights is None else np.asarray(weights)
        if abs(w.sum() - 1) > 1e-12:
            raise ValueError("mixture weights must sum to 1")
        self.weights, self.quantum = w, float(quantum)

    def sample(self, n, rng):
        """n points (n, 2) with exact mixture proportions (multinomial counts, shuffled)."""
        counts = rng.multinomial(n, self.weights)
        y = np.concatenate([c.sample(k, rng) for c, k in zip(self.components, counts)])
        return y[rng.permutation(n)]

    def log_prob(self, y):
        y = np.asarray(y, float)
        lps = np.stack([math.log(w) + c.log_prob(y) for w, c in zip(self.weights, self.components)])
        return np.logaddexp.reduce(lps, axis=0)

    def pi(self, y):
        """x = quantum * round(y1 / quantum), shape (n, 1)."""
        y = np.asarray(y, float)
        return (self.quantum * np.round(y[:, :1] / self.quantum))

    def log_prob_x(self, x, half_width=8.0, n1=201, n2=1601):
        """log P(pi(y) = x) by integrating the exact density over the bin of y1 and all of y2
        (trapezoid rule on a fine grid; y2 over [-half_width, half_width])."""
        out = {}
        for v in np.unique(np.asarray(x, float).ravel()):
            y1 = np.linspace(v - self.quantum / 2, v + self.quantum / 2, n1)
            y2 = np.linspace(-half_width, half_width, n2)
            g = np.stack(np.meshgrid(y1, y2, indexing="ij"), -1).reshape(-1, 2)
            p = np.exp(self.log_prob(g)).reshape(n1, n2)
            out[v] = math.log(np.trapezoid(np.trapezoid(p, y2, axis=1), y1))
        return np.array([out[v] for v in np.asarray(x, float).ravel()])

    def log_prob_conditional(self, y, x=None):
        """Exact log p(y | x) = log p(y) - log P(x) for y with pi(y) = x."""
        x = self.pi(y) if x is None else x
        return self.log_prob(y) - self.log_prob_x(x)


def make_teacher(name: str) -> Teacher:
    """One of ``TEACHERS``."""
    if name == "circle-cluster":
        return Teacher(name, [Arc((0, 0), 2.0, 0.1), Gauss((0, 0), 0.3)])
    if name == "two-moons":
        return Teacher(name, [Arc((-0.5, -0.25), 1.0, 0.1, (0, math.pi)),
                              Arc((0.5, 0.25), 1.0, 0.1, (math.pi, 2 * math.pi))])
    if name == "four-circles":
        return Teacher(name, [Arc((a, b), 1.0, 0.1) for a in (-1.5, 1.5) for b in (-1.5, 1.5)])
    if name == "abs":
        return Teacher(name, [AbsCurve(1.5, 0.1)])
    raise ValueError(f"unknown teacher {name!r}; choose one of {', '.join(TEACHERS)}")


TEACHERS = ("circle-cluster", "two-moons", "four-circles", "abs")
