"""Gradient boosted normalizing flows (thesis chapter 4, appendix B; flows-model.md 4.1).

A mixture of C flow components trained one at a time, earlier ones frozen.

* additive:       G_c = (1 - rho_c) G_{c-1} + rho_c g_c; log G by an exact running logsumexp.
* multiplicative: G_c ∝ G_{c-1}^(1 - rho_c) g_c^(rho_c), i.e. log G = sum_i w_i log g_i - log Z with
  w_c = rho_c prod_{j>c} (1 - rho_j).  Z is estimated by importance sampling from the uniform
  mixture of the components and reported with its standard error (the published code drops
  Z and reports an unnormalized density; this one never does).

A new component is fit by maximum likelihood on training data resampled with weights
proportional to 1 / G_{c-1}(x) (optionally plus lambda times its entropy); its weight
rho_c in [0, 1] is then chosen by a bounded line search (or the decaying-step SGD of
thesis Algorithm 1) on held-out data.  An optional fine-tuning pass retrains each
component with the others fixed.
"""
from __future__ import annotations

import math
import operator

import numpy as np
import torch
from torch import nn

from .. import _config
from .._io import atomic_torch_save


def freeze_init(flow):
    """Mark data-dependent initializations (ActNorm) as done, so a later forward pass in
    training mode cannot re-initialize a layer and silently change the density.  Needed
    when a flow is trained through its inverse only (reverse KL)."""
    for m in flow.modules():
        if hasattr(m, "initialized") and hasattr(m, "_init"):
            m.initialized.fill_(True)
    return flow


def rsample(flow, n, context=None):
    """Reparameterized samples of a flow and their log-density (gradients flow through both)."""
    freeze_init(flow)
    p = next(flow.parameters())
    eps = flow.base.sample(n, flow.dim, 1.0, device=p.device, dtype=p.dtype)
    x, ld_inv = flow.inverse(eps, context)
    return x, flow.base.log_prob(eps) - ld_inv


def _golden(f, lo=0.0, hi=1.0, tol=1e-4):
    """Maximize a unimodal-ish f on [lo, hi] (golden section), checking the end points too."""
    g = (math.sqrt(5) - 1) / 2
    f0 = f

    def f(r):  # a non-finite objective (a diverged component) must never win
        v = f0(r)
        return v if math.isfinite(v) else -math.inf

    a, b = lo, hi
    c, d = b - g * (b - a), a + g * (b - a)
    fc, fd = f(c), f(d)
    while b - a > tol:
        if fc > fd:
            b, d, fd = d, c, fc
            c = b - g * (b - a)
            fc = f(c)
        else:
            a, c, fc = c, d, fd
            d = a + g * (b - a)
            fd = f(d)
    best = max([(fc, c), (fd, d), (f(lo), lo), (f(hi), hi)])
    return best[1]


class BoostedFlow(nn.Module):
    """Gradient boosted normalizing flow.

    Parameters
    ----------
    make_component : callable c -> Flow
        Builds component ``c`` (0-based); components may differ in type and depth.  For the
        conditional model (appendix B) they take a ``context`` in ``log_prob``/``sample``.
    n_components : int
    mixture : "additive" | "multiplicative"
    entropy_reg : float
        lambda of the optional entropy term (estimated with the component's own samples).
    rho_method : "line_search" | "sgd"
    conditional : bool
        Components are conditional flows g(y | x); additive mixture only (the
        multiplicative normalizer would depend on x).
    """

    def __init__(self, make_component, n_components: int, mixture: str = "additive", entropy_reg: float = 0.0,
                 rho_method: str = "line_search", conditional: bool = False, n_mc: int = 20000):
        super().__init__()
        if not isinstance(n_components, int) or n_components < 1:
            raise ValueError(f"n_components must be an integer >= 1, got {n_components!r}")
        if mixture not in ("additive", "multiplicative"):
            raise ValueError(f"mixture must be 'additive' or 'multiplicative', got {mixture!r}")
        if rho_method not in ("line_search", "sgd"):
            raise ValueError(f"rho_method must be 'line_search' or 'sgd', got {rho_method!r}")
        if conditional and mixture == "multiplicative":
            raise ValueError("a conditional multiplicative GBNF would need a normalizer Z(x) per context; "
                             "use mixture='additive' for conditional models")
        if entropy_reg < 0:
            raise ValueError("entropy_reg must be >= 0")
        self.make_component, self.n_components, self.mixture = make_component, n_components, mixture
        self.entropy_reg, self.rho_method, self.conditional, self.n_mc = entropy_reg, rho_method, conditional, n_mc
        self.components = nn.ModuleList()
        self.register_buffer("rho", torch.zeros(0))
        self.log_z, self.log_z_se = 0.0, 0.0
        self.history: list[dict] = []

    # ------------------------------------------------------------------ mixture algebra
    def set_rho(self, rho):
        rho = torch.as_tensor(rho, dtype=torch.float64).flatten()
        if rho.numel() != len(self.components):
            raise ValueError(f"need {len(self.components)} weights, got {rho.numel()}")
        if rho.numel() and (rho.min() < 0 or rho.max() > 1 or not torch.isfinite(rho).all()):
            raise ValueError(f"component weights rho must lie in [0, 1], got {rho.tolist()}")
        self.rho = rho.to(self.rho.device)

    def weights(self, rho=None):
        """w_c = rho_c * prod_{j>c} (1 - rho_j) (rho_0 is taken as 1)."""
        rho = (self.rho if rho is None else rho).double().clone()
        if rho.numel():
            rho[0] = 1.0
        w = torch.empty_like(rho)
        tail = torch.ones((), dtype=rho.dtype, device=rho.device)
        for c in range(rho.numel() - 1, -1, -1):
            w[c] = rho[c] * tail
            tail = tail * (1 - rho[c])
        return w

    def component_log_probs(self, x, context=None, upto=None):
        """(C', B) log g_c(x) of the first ``upto`` components."""
        comps = self.components[: upto if upto is not None else len(self.components)]
        out = []
        for g in comps:
            out.append(g.log_prob(x, context) if self.conditional else g.log_prob(x))
        return torch.stack(out).double()

    def _combine(self, lg, w, log_z=0.0):
        if self.mixture == "additive":
            lw = torch.log(w.clamp_min(0))[:, None]
            return torch.logsumexp(lw + lg, dim=0)
        return (w[:, None] * lg).sum(0) - log_z

    def log_prob(self, x, context=None):
        """log G(x) (normalized; multiplicative uses the estimated log Z, see ``log_z_se``)."""
        if not len(self.components):
            raise RuntimeError("this boosted flow has no trained component yet: call fit()")
        x, context = self._as_input(x), self._as_input(context, "context")
        lg = self.component_log_probs(x, context)
        return self._combine(lg, self.weights().to(lg.device), self.log_z)

    def _check_input(self, x, name="inputs"):
        if not torch.isfinite(x).all():
            raise ValueError(f"{name} contain NaN or inf; clean the data first")

    def _as_input(self, x, name="inputs", like=None):
        """x as a finite tensor of the components' dtype and device (so that fit and log_prob
        accept the same inputs: float64, float32, integers or NumPy arrays)."""
        if x is None:
            return None
        like = like if like is not None else (self.components[0] if len(self.components) else None)
        p = next(like.parameters(), None) if like is not None else None
        dtype = p.dtype if p is not None else torch.get_default_dtype()
        x = torch.as_tensor(x).to(dtype=dtype, device=p.device if p is not None else None)
        self._check_input(x, name)
        return x

    # ------------------------------------------------------------------ normalizer
    @torch.no_grad()
    def estimate_log_z(self, w=None, n=None, seed=0):
        """log of the multiplicative mixture's normalizer and its standard error.

        Importance sampling with the uniform mixture of components q as proposal:
        Z = E_q[exp(sum_i w_i log g_i(x)) / q(x)]; se(log Z) by the delta method.
        """
        w = self.weights() if w is None else w
        n = n or self.n_mc
        C = len(self.components)
        gen = torch.Generator().manual_seed(seed)
        counts = torch.bincount(torch.randint(0, C, (n,), generator=gen), minlength=C)
        xs = [self.components[c].sample(int(k)) for c, k in enumerate(counts.tolist()) if k]
        x = torch.cat(xs)
        lg = self.component_log_probs(x)
        log_q = torch.logsumexp(lg, 0) - math.log(C)
        lr = (w.to(lg.device)[:, None] * lg).sum(0) - log_q
        m = lr.max()
        r = torch.exp(lr - m)
        mean = r.mean()
        se = float(r.std() / (mean * math.sqrt(n)))
        return float(m + torch.log(mean)), se

    # ------------------------------------------------------------------ training
    @torch.no_grad()
    def resampling_weights(self, x, context=None):
        """Weights proportional to 1 / G(x) of the current mixture (max-normalized), (N,)."""
        lG = self.log_prob(x, context)
        return torch.exp(-(lG - lG.min())).double()

    def _fit_component(self, g, x, context, sample_w, epochs, batch_size, lr, rng, bar=None):
        opt = torch.optim.Adam(g.parameters(), lr=lr)
        N = x.shape[0]
        p = None if sample_w is None else (sample_w / sample_w.sum()).numpy()
        for _ in range(epochs):
            idx = rng.choice(N, size=N, replace=True, p=p) if p is not None else rng.permutation(N)
            idx = torch.from_numpy(idx)
            for i in range(0, N, batch_size):
                b = idx[i:i + batch_size]
                lp = g.log_prob(x[b], context[b]) if self.conditional else g.log_prob(x[b])
                loss = -lp.mean()
                if self.entropy_reg > 0:
                    ctx = context[b] if self.conditional else None
                    _, log_q = rsample(g, b.shape[0], ctx)
                    loss = loss + self.entropy_reg * log_q.mean()  # minus lambda * entropy
                if not torch.isfinite(loss):
                    raise FloatingPointError("non-finite loss while training a component; lower lr")
                opt.zero_grad()
                loss.backward()
                torch.nn.utils.clip_grad_norm_(g.parameters(), 100.0)
                opt.step()
            if bar is not None:
                bar.update(1)

    @torch.no_grad()
    def _choose_rho(self, lg_val, w_prev_rho, steps=200):
        """rho_c maximizing the held-out log-likelihood of the new mixture."""
        def objective(r):
            rho = torch.cat([w_prev_rho, torch.tensor([r], dtype=torch.float64)])
            w = self.weights(rho)
            log_z = 0.0
            if self.mixture == "multiplicative":
                log_z, _ = self.estimate_log_z(w, n=min(self.n_mc, 4000), seed=1)
            return float(self._combine(lg_val, w, log_z).mean())

        if self.rho_method == "line_search":
            return _golden(objective, 0.0, 1.0, tol=1e-3 if self.mixture == "multiplicative" else 1e-4)
        # thesis Algorithm 1: projected gradient ascent on rho with a decaying step
        r = 0.5
        for t in range(steps):
            h = 1e-4
            grad = (objective(min(r + h, 1.0)) - objective(max(r - h, 0.0))) / (min(r + h, 1.0) - max(r - h, 0.0))
            r = float(np.clip(r + 0.5 / math.sqrt(t + 1) * grad, 0.0, 1.0))
        return r

    def fit(self, x, x_val, context=None, context_val=None, epochs: int = 50, batch_size: int = 256,
            lr: float = 1e-3, finetune_epochs: int = 0, seed: int = 0, progress: bool = True):
        """Train all components (continuing if some are already trained)."""
        x, x_val = self._as_input(x, "training data"), self._as_input(x_val, "validation data")
        context, context_val = self._as_input(context, "context"), self._as_input(context_val, "context_val")
        for name, v in (("training data x", x), ("validation data x_val", x_val)):
            if v.dim() < 2 or v.shape[0] == 0:
                raise ValueError(f"{name} must be a non-empty (N, D) array, got shape {tuple(v.shape)}")
        if self.conditional and (context is None or context_val is None):
            raise ValueError("a conditional GBNF needs context and context_val")
        rng = np.random.default_rng(seed)
        torch.manual_seed(seed)
        bar = None
        if progress and _config.config.progress:
            from tqdm.auto import tqdm

            bar = tqdm(total=(self.n_components - len(self.components)) * epochs, desc="GBNF", unit="epoch")
        while len(self.components) < self.n_components:
            c = len(self.components)
            g = self.make_component(c)
            if c == 0:  # the data follow the components' dtype (float32 unless make_component says otherwise)
                x, x_val = self._as_input(x, like=g), self._as_input(x_val, like=g)
                context, context_val = self._as_input(context, like=g), self._as_input(context_val, like=g)
            sample_w = self.resampling_weights(x, context) if c > 0 else None
            for p in self.parameters():
                p.requires_grad_(False)
            self._fit_component(g, x, context, sample_w, epochs, batch_size, lr, rng, bar)
            for p in g.parameters():
                p.requires_grad_(False)
            g.eval()
            self.components.append(g)
            with torch.no_grad():
                lg_val = self.component_log_probs(x_val, context_val)
            prev = self.rho.double().cpu()
            r = 1.0 if c == 0 else self._choose_rho(lg_val, prev)
            self.set_rho(torch.cat([prev, torch.tensor([r], dtype=torch.float64)]))
            if self.mixture == "multiplicative" and c > 0:
                self.log_z, self.log_z_se = self.estimate_log_z()
            with torch.no_grad():
                val = float(self.log_prob(x_val, context_val).mean())
            self.history.append({"component": c, "rho": r, "val_loglik": val, "log_z": self.log_z,
                                 "log_z_se": self.log_z_se})
        if bar is not None:
            bar.close()
        if finetune_epochs:
            self.finetune(x, context, finetune_epochs, batch_size, lr, rng)
            with torch.no_grad():
                self.history.append({"finetuned": True, "val_loglik": float(self.log_prob(x_val, context_val).mean())})
        return self

    def finetune(self, x, context, epochs, batch_size, lr, rng):
        """Retrain each component with the others fixed, on data re-weighted by 1 / G_{-c}."""
        for c, g in enumerate(self.components):
            w = self.weights()
            with torch.no_grad():
                lg = self.component_log_probs(x, context)
                keep = [i for i in range(len(self.components)) if i != c]
                if keep:
                    wk = w[keep] / w[keep].sum()
                    l_other = self._combine(lg[keep], wk, 0.0)
                    sample_w = torch.exp(-(l_other - l_other.min()))
                else:
                    sample_w = None
            for p in g.parameters():
                p.requires_grad_(True)
            self._fit_component(g, x, context, sample_w, epochs, batch_size, lr, rng)
            for p in g.parameters():
                p.requires_grad_(False)
        if self.mixture == "multiplicative" and len(self.components) > 1:
            self.log_z, self.log_z_se = self.estimate_log_z()

    # ------------------------------------------------------------------ sampling
    @torch.no_grad()
    def sample(self, n: int, context=None, seed=None):
        """Additive: choose c ~ Categorical(w), draw from g_c.  Multiplicative: sampling /
        importance resampling from the uniform mixture of components (approximate).

        ``seed`` makes the whole draw reproducible (component choices and the components'
        own noise) without touching the global random state."""
        if seed is None:
            return self._sample(n, context)
        p = next(self.parameters(), None)
        devices = [p.device] if p is not None and p.is_cuda else []
        with torch.random.fork_rng(devices=devices):
            torch.manual_seed(seed)
            return self._sample(n, context, seed)

    def _sample(self, n, context=None, seed=None):
        if not len(self.components):
            raise RuntimeError("no trained component: call fit()")
        n = operator.index(n)
        if n < 0:
            raise ValueError(f"the number of samples must be >= 0, got {n}")
        if n == 0:
            p = next(self.components[0].parameters())
            return torch.empty(0, *self.components[0].event_shape, dtype=p.dtype, device=p.device)
        gen = torch.Generator().manual_seed(seed) if seed is not None else None
        w = self.weights()
        C = len(self.components)
        if self.mixture == "additive":
            which = torch.multinomial(w.float(), n, replacement=True, generator=gen)
            out = None
            for c in range(C):
                idx = (which == c).nonzero().flatten()
                if idx.numel() == 0:
                    continue
                ctx = context[idx] if context is not None else None
                s = self.components[c].sample(idx.numel(), context=ctx) if self.conditional else \
                    self.components[c].sample(idx.numel())
                if out is None:
                    out = s.new_empty(n, *s.shape[1:])
                out[idx] = s
            return out
        m = 20 * n
        counts = torch.bincount(torch.randint(0, C, (m,), generator=gen), minlength=C)
        x = torch.cat([self.components[c].sample(int(k)) for c, k in enumerate(counts.tolist()) if k])
        lg = self.component_log_probs(x)
        lw = (w[:, None] * lg).sum(0) - (torch.logsumexp(lg, 0) - math.log(C))
        p = torch.softmax(lw, 0).float()
        return x[torch.multinomial(p, n, replacement=True, generator=gen)]

    # ------------------------------------------------------------------ persistence
    def save(self, path):
        """Write the trained components and weights atomically (reload with ``load``)."""
        atomic_torch_save({"state": self.state_dict(), "n_trained": len(self.components), "mixture": self.mixture,
                           "n_components": self.n_components, "log_z": self.log_z, "log_z_se": self.log_z_se,
                           "history": self.history, "conditional": self.conditional,
                           "entropy_reg": self.entropy_reg, "rho_method": self.rho_method}, path)

    @classmethod
    def load(cls, path, make_component):
        s = torch.load(path, weights_only=True)
        m = cls(make_component, s["n_components"], s["mixture"], s["entropy_reg"], s["rho_method"], s["conditional"])
        for c in range(s["n_trained"]):
            m.components.append(make_component(c))
        m.rho = torch.zeros(s["n_trained"], dtype=torch.float64)
        m.load_state_dict(s["state"])
        for p in m.parameters():
            p.requires_grad_(False)
        m.log_z, m.log_z_se, m.history = s["log_z"], s["log_z_se"], s["history"]
        m.eval()
        return m
