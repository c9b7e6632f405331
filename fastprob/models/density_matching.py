"""Density matching by reverse KL (thesis figure 13): fit q to p ∝ exp(-U) from U alone.

A single flow minimizes KL(q || p) = E_q[log q(z) + U(z)] + log Z_p with reparameterized
samples.  The boosted (additive) version trains component c to minimize
E_{z ~ g_c}[log G_c(z) + U(z)] with G_c = (1 - rho) G_{c-1} + rho g_c at rho = 1/(c+1),
then chooses rho by a line search on the Monte Carlo estimate of KL(G_c || p).
"""
from __future__ import annotations

import math

import torch

from .gbnf import BoostedFlow, _golden, freeze_init, rsample


def reverse_kl(log_q, u):
    """E[log q + U] estimated from samples of q (KL(q || p) minus log Z_p)."""
    return float((log_q + u).mean())


def fit_flow_reverse_kl(flow, energy_fn, steps=2000, batch=512, lr=1e-3, seed=0):
    torch.manual_seed(seed)
    freeze_init(flow)
    opt = torch.optim.Adam(flow.parameters(), lr=lr)
    for _ in range(steps):
        z, log_q = rsample(flow, batch)
        loss = (log_q + energy_fn(z)).mean()
        opt.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(flow.parameters(), 100.0)
        opt.step()
    with torch.no_grad():
        z, log_q = rsample(flow, 20000)
        return reverse_kl(log_q, energy_fn(z))


def fit_boosted_reverse_kl(boosted: BoostedFlow, energy_fn, steps=2000, batch=512, lr=1e-3, seed=0):
    """Train an additive BoostedFlow by reverse KL; returns the KL estimate after each component."""
    if boosted.mixture != "additive":
        raise ValueError("density matching is implemented for the additive mixture")
    torch.manual_seed(seed)
    kls = []
    while len(boosted.components) < boosted.n_components:
        c = len(boosted.components)
        g = boosted.make_component(c)
        opt = torch.optim.Adam(g.parameters(), lr=lr)
        r0 = 1.0 / (c + 1)
        w_prev = boosted.weights().float() if c else None
        for _ in range(steps):
            z, log_g = rsample(g, batch)
            if c:
                lg_prev = boosted.component_log_probs(z).float()
                l_prev = torch.logsumexp(torch.log(w_prev)[:, None] + lg_prev, 0)
                log_G = torch.logsumexp(torch.stack([math.log(1 - r0) + l_prev, math.log(r0) + log_g]), 0)
            else:
                log_G = log_g
            loss = (log_G + energy_fn(z)).mean()
            if not torch.isfinite(loss):
                raise FloatingPointError(f"non-finite reverse-KL loss while training component {c}; "
                                         "lower lr or use fewer steps")
            opt.zero_grad()
            loss.backward()
            torch.nn.utils.clip_grad_norm_(g.parameters(), 100.0)
            opt.step()
        for p in g.parameters():
            p.requires_grad_(False)
        freeze_init(g).eval()
        prev = boosted.rho.double().cpu()
        boosted.components.append(g)
        if c == 0:
            boosted.set_rho(torch.ones(1, dtype=torch.float64))
        else:
            with torch.no_grad():
                n = 8000
                z_old = _sample_mixture(boosted, prev, n)
                z_new = g.sample(n)
                lg_old = boosted.component_log_probs(z_old)
                lg_new = boosted.component_log_probs(z_new)
                u_old, u_new = energy_fn(z_old).double(), energy_fn(z_new).double()

            def neg_kl(r):
                w = boosted.weights(torch.cat([prev, torch.tensor([r], dtype=torch.float64)]))
                lw = torch.log(w.clamp_min(1e-300))[:, None]
                f_old = torch.logsumexp(lw + lg_old, 0) + u_old
                f_new = torch.logsumexp(lw + lg_new, 0) + u_new
                return -float((1 - r) * f_old.mean() + r * f_new.mean())

            boosted.set_rho(torch.cat([prev, torch.tensor([_golden(neg_kl)], dtype=torch.float64)]))
        with torch.no_grad():
            z = boosted.sample(20000)
            kls.append(reverse_kl(boosted.log_prob(z).float(), energy_fn(z)))
        boosted.history.append({"component": c, "rho": float(boosted.rho[-1]), "kl_minus_logZ": kls[-1]})
    return kls


@torch.no_grad()
def _sample_mixture(boosted, rho, n):
    """Samples of the additive mixture of the trained components under weights ``rho``."""
    w = boosted.weights(rho).float()
    which = torch.multinomial(w, n, replacement=True)
    parts = [boosted.components[c].sample(int((which == c).sum())) for c in range(w.numel()) if (which == c).any()]
    return torch.cat(parts)
