"""VAE with a gradient boosted flow posterior (thesis sections 4.5-4.7; flows-model.md 4.1).

The approximate posterior is the additive mixture

    G_C(z | x) = sum_c w_c g_c(z | x),   w_c = rho_c prod_{j>c} (1 - rho_j)   (rho_0 = 1),

where component g_c pushes the encoder's Gaussian N(mu(x), diag sigma(x)^2) through its own
conditional RealNVP (coupling layers from :mod:`fastprob.flows`, conditioned on an encoder
feature vector).  The mixture container, its weights and its log-density are those of
:class:`fastprob.models.BoostedFlow` (``conditional=True``); each component packs the
encoder output ``(mu, log_sigma, h)`` into the flow's ``context``.

The density of any z under the whole mixture is exact: every component is inverted
(``forward`` of its flow), and the component densities are combined by a logsumexp with the
weights.  Nothing is clamped.  Training lives in :mod:`fastprob.models.vae_training`.
"""
from __future__ import annotations

import math

import torch
from torch import nn
from torch.nn import functional as F

from .._io import atomic_torch_save
from ..flows import realnvp_vector
from .gbnf import BoostedFlow

LIKELIHOODS = ("bernoulli", "gaussian", "logistic")


def _mlp(d_in, d_out, hidden, layers=2):
    mods, d = [], d_in
    for _ in range(layers):
        mods += [nn.Linear(d, hidden), nn.ELU()]
        d = hidden
    mods.append(nn.Linear(d, d_out))
    return nn.Sequential(*mods)


def _std_normal_log_prob(u):
    return -0.5 * (u * u).sum(1) - 0.5 * u.shape[1] * math.log(2 * math.pi)


class _IdentityFlow(nn.Module):
    """z -> z with log|det| = 0, same (x, context) -> (y, logdet) interface as a flow."""

    def forward(self, z, context=None):
        return z, z.new_zeros(z.shape[0])

    def inverse(self, z, context=None):
        return z, z.new_zeros(z.shape[0])


class PosteriorComponent(nn.Module):
    """One component g_c(z | x): the encoder's Gaussian pushed through a conditional RealNVP.

    The context is the encoder output ``(mu, log_sigma, h)`` packed as one (B, 2 d + H)
    tensor, so the component fits :class:`BoostedFlow`'s ``log_prob(z, context)`` /
    ``sample(n, context=...)`` interface.  The flow maps z_K -> z_0 with ``forward`` (its
    data-to-latent direction) and z_0 -> z_K with ``inverse``.

    Parameters
    ----------
    latent_dim : int
        d, the size of z.
    context_dim : int
        H, the size of the encoder feature vector given to the coupling networks.
    depth : int
        Number of coupling layers (0 gives the plain diagonal-Gaussian posterior).
    hidden : int
        Width of the coupling networks.
    """

    def __init__(self, latent_dim: int, context_dim: int, depth: int = 2, hidden: int = 64,
                 scale_map: str = "tanh"):
        super().__init__()
        if depth < 0:
            raise ValueError(f"depth must be >= 0, got {depth}")
        if depth > 0 and latent_dim < 2:
            raise ValueError("coupling flows need a latent of at least 2 dimensions; use depth=0 for a 1-D latent")
        self.latent_dim, self.context_dim, self.depth = latent_dim, context_dim, depth
        # no ActNorm: its data-dependent initialization would re-fire when the flow is first used
        # through its inverse (sampling), silently changing a component's density
        # depth 0 (the plain VAE's diagonal Gaussian): an identity map, since realnvp_vector
        # requires at least one layer
        self.flow = (realnvp_vector(latent_dim, n_layers=depth, hidden=hidden, scale_map=scale_map,
                                    context_dim=context_dim, actnorm=False) if depth > 0 else _IdentityFlow())

    def _unpack(self, context):
        d = self.latent_dim
        if context is None or context.dim() != 2 or context.shape[1] != 2 * d + self.context_dim:
            raise ValueError(f"a posterior component needs a context of shape (B, {2 * d + self.context_dim}) "
                             "= (mu, log_sigma, h) from BoostedVAE.encode")
        return context[:, :d], context[:, d:2 * d], context[:, 2 * d:]

    def rsample(self, context):
        """Reparameterized z ~ g(z | x) and log g(z | x), both (B, d) / (B,), one per context row."""
        mu, ls, h = self._unpack(context)
        eps = torch.randn_like(mu)
        z0 = mu + torch.exp(ls) * eps
        z, ld_inv = self.flow.inverse(z0, h)  # ld_inv = log|det dz_K/dz_0|
        return z, _std_normal_log_prob(eps) - ls.sum(1) - ld_inv

    def log_prob(self, z, context):
        """log g(z | x) of given latents (B, d): invert the flow, Gaussian density of z_0, + log|det|."""
        mu, ls, h = self._unpack(context)
        z0, ld = self.flow.forward(z, h)  # ld = log|det dz_0/dz_K|
        u = (z0 - mu) * torch.exp(-ls)
        return _std_normal_log_prob(u) - ls.sum(1) + ld

    @torch.no_grad()
    def sample(self, n, context=None):
        if context is None or context.shape[0] != n:
            raise ValueError("sample(n, context) needs one context row per sample")
        return self.rsample(context)[0]


class BoostedVAE(nn.Module):
    """Variational autoencoder whose posterior is a gradient boosted mixture of flows.

    Parameters
    ----------
    x_dim : int
        Size of a flattened data point.
    latent_dim : int
        Size d of z; the prior is N(0, I).
    n_components : int
        C, the number of boosted flow components (1 gives the single-flow VAE; with
        ``depth=0`` as well, the plain VAE with a diagonal Gaussian posterior).
    depth : int
        Coupling layers per component.
    hidden : int
        Width of the encoder and decoder MLPs (two hidden layers each).
    flow_hidden : int
        Width of the coupling networks.
    context_dim : int
        Size of the encoder feature vector h(x) the couplings are conditioned on.
    likelihood : "bernoulli" | "gaussian" | "logistic"
        p(x | z): Bernoulli for binary data in {0, 1}; Gaussian with a learned per-pixel
        scale for real data; discretized logistic (learned per-pixel scale) for integer
        gray levels 0..n_bins-1.
    n_bins : int
        Number of gray levels (``likelihood="logistic"`` only).
    entropy_reg : float
        lambda of eq. 4.20 (the weight of E_g[log g] in the boosting objective; 1 in the thesis).
    seed : int
        Seeds the initialization of every component (component c uses seed * 1000 + c).
    """

    def __init__(self, x_dim: int, latent_dim: int = 8, n_components: int = 4, depth: int = 2, hidden: int = 128,
                 flow_hidden: int = 64, context_dim: int = 16, likelihood: str = "bernoulli", n_bins: int | None = None,
                 entropy_reg: float = 1.0, seed: int = 0):
        super().__init__()
        if not isinstance(x_dim, int) or x_dim < 1:
            raise ValueError(f"x_dim must be a positive integer, got {x_dim!r}")
        if not isinstance(latent_dim, int) or latent_dim < 1:
            raise ValueError(f"latent_dim must be a positive integer, got {latent_dim!r}")
        if likelihood not in LIKELIHOODS:
            raise ValueError(f"likelihood must be one of {LIKELIHOODS}, got {likelihood!r}")
        if likelihood == "logistic" and (n_bins is None or n_bins < 2):
            raise ValueError("the discretized logistic likelihood needs n_bins >= 2 (number of gray levels)")
        if entropy_reg <= 0:
            raise ValueError(f"entropy_reg (lambda) must be > 0, got {entropy_reg}")
        self.config = dict(x_dim=x_dim, latent_dim=latent_dim, n_components=n_components, depth=depth,
                           hidden=hidden, flow_hidden=flow_hidden, context_dim=context_dim, likelihood=likelihood,
                           n_bins=n_bins, entropy_reg=entropy_reg, seed=seed)
        self.x_dim, self.latent_dim, self.likelihood, self.n_bins = x_dim, latent_dim, likelihood, n_bins
        self.entropy_reg, self.seed = entropy_reg, seed
        with torch.random.fork_rng():
            torch.manual_seed(seed)
            self.encoder = _mlp(x_dim, 2 * latent_dim + context_dim, hidden)
            self.decoder = _mlp(latent_dim, x_dim, hidden)
        # the logistic's scale is on the [0, 1] gray scale: start it at e^-2 = 0.14 (about the spread of
        # natural-image gray levels), not at 1, which would leave thousands of Adam steps just shrinking it
        init = -2.0 if likelihood == "logistic" else 0.0
        self.dec_log_scale = nn.Parameter(torch.full((x_dim,), init)) if likelihood != "bernoulli" else None
        self._comp_args = (latent_dim, context_dim, depth, flow_hidden)
        self.posterior = BoostedFlow(self._make_component, n_components, "additive", conditional=True)
        # every component exists from the start (fixed state_dict layout for checkpoints);
        # an untrained component has rho = 0, hence weight 0 in the mixture
        for c in range(n_components):
            self.posterior.components.append(self._make_component(c))
        rho = torch.zeros(n_components, dtype=torch.float64)
        rho[0] = 1.0
        self.posterior.set_rho(rho)
        self.register_buffer("n_trained", torch.tensor(0))

    def _make_component(self, c):
        with torch.random.fork_rng():
            torch.manual_seed(self.seed * 1000 + c + 1)
            return PosteriorComponent(*self._comp_args)

    @property
    def n_components(self):
        return self.posterior.n_components

    @property
    def components(self):
        return self.posterior.components

    # ------------------------------------------------------------------ input checks
    def check_x(self, x):
        """Validate a data batch (B, x_dim) for this model's likelihood; returns it as float."""
        if not torch.is_tensor(x):
            x = torch.as_tensor(x)
        if x.dim() != 2 or x.shape[1] != self.x_dim:
            raise ValueError(f"expected data of shape (B, {self.x_dim}) (flattened), got {tuple(x.shape)}")
        x = x.float()
        if not torch.isfinite(x).all():
            raise ValueError("data contain NaN or inf; clean the data first")
        if self.likelihood == "bernoulli" and not ((x == 0) | (x == 1)).all():
            raise ValueError("the Bernoulli likelihood needs binary data in {0, 1}; binarize the images "
                             "(e.g. torch.bernoulli(x / x.max())) or use likelihood='gaussian'/'logistic'")
        if self.likelihood == "logistic" and (
                (x != x.round()).any() or x.min() < 0 or x.max() > self.n_bins - 1):
            raise ValueError(f"the discretized logistic likelihood needs integer gray levels 0..{self.n_bins - 1}")
        return x

    # ------------------------------------------------------------------ model pieces
    def encode(self, x):
        """Context (B, 2 d + H): mean and log-std of the base Gaussian q_0(z_0 | x), and h(x)."""
        x = self._scale_input(x)
        out = self.encoder(x)
        return out

    def _scale_input(self, x):
        return x / (self.n_bins - 1) if self.likelihood == "logistic" else x

    @staticmethod
    def log_prior(z):
        """log N(z; 0, I), (B,)."""
        return _std_normal_log_prob(z)

    def log_lik(self, x, z):
        """log p(x | z), (B,)."""
        out = self.decoder(z)
        if self.likelihood == "bernoulli":
            return -F.binary_cross_entropy_with_logits(out, x, reduction="none").sum(1)
        if self.likelihood == "gaussian":
            ls = self.dec_log_scale
            u = (x - out) * torch.exp(-ls)
            return (-0.5 * u * u - ls - 0.5 * math.log(2 * math.pi)).sum(1)
        return discretized_logistic_log_prob(x, out, self.dec_log_scale, self.n_bins).sum(1)

    def decode_mean(self, z):
        """Mean image E[x | z] (gray levels for the logistic likelihood: its location)."""
        out = self.decoder(z)
        if self.likelihood == "bernoulli":
            return torch.sigmoid(out)
        if self.likelihood == "logistic":
            return (out.clamp(0, 1) * (self.n_bins - 1))
        return out

    # ------------------------------------------------------------------ posterior mixture
    def mixture_log_prob(self, z, context, rho=None, upto=None, exclude=None):
        """log of the additive mixture of components ``< upto`` (default: all), weights from
        ``rho`` (default: the model's); component ``exclude`` is left out and the remaining
        weights renormalized (G_{-c} of fine-tuning).  Every component is inverted; the
        densities are combined by a logsumexp, (B,)."""
        rho = self.posterior.rho if rho is None else rho
        upto = self.n_components if upto is None else upto
        w = self.posterior.weights(rho[:upto].to(self.posterior.rho)).to(z.device)
        keep = [c for c in range(upto) if c != exclude and float(w[c]) > 0]
        if not keep:
            raise ValueError("the requested mixture has no component with positive weight")
        lg = torch.stack([self.components[c].log_prob(z, context) for c in keep])
        lw = torch.log(w[keep] / w[keep].sum()).to(lg.dtype)
        return torch.logsumexp(lw[:, None] + lg, 0)

    def sample_mixture(self, context, rho=None, upto=None, exclude=None):
        """One z per context row from the same mixture as :meth:`mixture_log_prob` (no gradient)."""
        rho = self.posterior.rho if rho is None else rho
        upto = self.n_components if upto is None else upto
        w = self.posterior.weights(rho[:upto].to(self.posterior.rho)).clone()
        if exclude is not None:
            w[exclude] = 0
        with torch.no_grad():
            which = torch.multinomial(w.float(), context.shape[0], replacement=True)
            z = context.new_empty(context.shape[0], self.latent_dim)
            for c in range(upto):
                idx = (which == c).nonzero().flatten()
                if idx.numel():
                    z[idx] = self.components[c].sample(idx.numel(), context=context[idx])
        return z

    def posterior_log_prob(self, z, x):
        """log G_C(z | x) of the trained mixture (float64), z (B, d), x (B, x_dim)."""
        self._check_trained()
        x = self.check_x(x)
        return self.posterior.log_prob(z, self.encode(x))

    @torch.no_grad()
    def sample_posterior(self, x, n):
        """n samples of G_C(z | x) per data point, (B, n, d), by BoostedFlow.sample
        (component c ~ Categorical(w), then g_c's flow)."""
        self._check_trained()
        x = self.check_x(x)
        ctx = self.encode(x).repeat_interleave(n, 0)
        return self.posterior.sample(ctx.shape[0], context=ctx).reshape(x.shape[0], n, self.latent_dim)

    def _check_trained(self):
        if int(self.n_trained) < 1:
            raise RuntimeError("this BoostedVAE has no trained component yet: train it with fit_boosted_vae()")

    # ------------------------------------------------------------------ evaluation
    @torch.no_grad()
    def log_weights(self, x, k):
        """log p(x, z_i) - log G_C(z_i | x) for z_i ~ G_C(z | x), i = 1..k; (B, k) float64."""
        self._check_trained()
        x = self.check_x(x)
        if not isinstance(k, int) or k < 1:
            raise ValueError(f"k (importance samples) must be a positive integer, got {k!r}")
        B = x.shape[0]
        ctx = self.encode(x).repeat_interleave(k, 0)
        xr = x.repeat_interleave(k, 0)
        z = self.posterior.sample(B * k, context=ctx)
        lw = (self.log_lik(xr, z) + self.log_prior(z)).double() - self.posterior.log_prob(z, ctx)
        return lw.reshape(B, k)

    @torch.no_grad()
    def evaluate(self, x, k: int = 1000, batch_size: int = 50, seed: int | None = 0):
        """-ELBO (eq. 2.9, one sample of G_C per point) and the importance-sampled NLL.

        NLL_i = -log (1/k sum_j p(x_i, z_j) / G_C(z_j | x_i)), z_j ~ G_C(z | x_i); both
        returned as means over the data with their standard errors (std / sqrt(N)) in nats.
        """
        x = self.check_x(x)
        was = self.training
        self.eval()
        with torch.random.fork_rng():  # evaluation leaves the caller's random stream untouched
            if seed is not None:
                torch.manual_seed(seed)
            elbo, ll = [], []
            for i in range(0, x.shape[0], batch_size):
                xb = x[i:i + batch_size]
                elbo.append(self.log_weights(xb, 1)[:, 0])
                lw = self.log_weights(xb, k)
                ll.append(torch.logsumexp(lw, 1) - math.log(k))
        self.train(was)
        elbo, ll = torch.cat(elbo), torch.cat(ll)
        n = x.shape[0]
        return {"neg_elbo": float(-elbo.mean()), "neg_elbo_se": float(elbo.std() / math.sqrt(n)),
                "nll": float(-ll.mean()), "nll_se": float(ll.std() / math.sqrt(n)), "k": k, "n": n}

    @torch.no_grad()
    def reconstruct(self, x):
        """Decoder mean at one sample of G_C(z | x), (B, x_dim)."""
        x = self.check_x(x)
        ctx = self.encode(x)
        return self.decode_mean(self.sample_mixture(ctx, upto=int(self.n_trained)))

    @torch.no_grad()
    def sample(self, n: int):
        """Decoder means at z ~ N(0, I), (n, x_dim)."""
        p = next(self.parameters())
        return self.decode_mean(torch.randn(n, self.latent_dim, device=p.device, dtype=p.dtype))

    # ------------------------------------------------------------------ persistence
    def save(self, path):
        """Write configuration and weights atomically; reload with :meth:`load`."""
        atomic_torch_save({"config": self.config, "state": self.state_dict()}, path)

    @classmethod
    def load(cls, path):
        s = torch.load(path, weights_only=True)
        if not isinstance(s, dict) or "config" not in s or "state" not in s:
            raise ValueError(f"{path} is not a BoostedVAE file written by BoostedVAE.save")
        m = cls(**s["config"])
        m.load_state_dict(s["state"])
        m.eval()
        return m


def discretized_logistic_log_prob(x, loc, log_scale, n_bins):
    """log P(x) for integer x in 0..n_bins-1 under a logistic on [0, 1] discretized into
    n_bins bins centred at k / (n_bins - 1), the end bins taking the tails; elementwise.

    Uses log(sigmoid(a) - sigmoid(b)) = logsigmoid(a) + logsigmoid(-b) + log(1 - exp(b - a)),
    exact and stable for a > b.
    """
    y = x / (n_bins - 1)
    half = 0.5 / (n_bins - 1)
    inv_s = torch.exp(-log_scale)
    a = (y + half - loc) * inv_s
    b = (y - half - loc) * inv_s
    mid = F.logsigmoid(a) + F.logsigmoid(-b) + torch.log(-torch.expm1(b - a))
    lo = F.logsigmoid(a)   # x = 0 takes (-inf, upper edge]
    hi = F.logsigmoid(-b)  # x = n_bins - 1 takes [lower edge, inf)
    return torch.where(x <= 0, lo, torch.where(x >= n_bins - 1, hi, mid))
