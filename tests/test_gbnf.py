"""Gradient boosted normalizing flows: mixture algebra, normalization, re-weighting, sampling."""
import math

import numpy as np
import pytest
import torch

from fastprob.datasets.toy2d import ENERGIES, TOYS, energy, sample_toy
from fastprob.flows import DiagonalGaussian, Flow, realnvp_vector
from fastprob.models import BoostedFlow, fit_boosted_reverse_kl, fit_flow_reverse_kl


def make(c):
    torch.manual_seed(100 + c)
    return realnvp_vector(2, n_layers=2, hidden=16)


@pytest.fixture(scope="module")
def data():
    x = torch.tensor(sample_toy("8gaussians", 1200, seed=0), dtype=torch.float32)
    return x[:1000], x[1000:]


@pytest.fixture(scope="module")
def additive(data):
    x, xv = data
    return BoostedFlow(make, 3, "additive").fit(x, xv, epochs=3, batch_size=200, progress=False)


def test_additive_equals_bruteforce_logsumexp(additive, data):
    _, xv = data
    w = additive.weights()
    assert abs(float(w.sum()) - 1) < 1e-12 and (w >= 0).all()
    with torch.no_grad():
        lg = torch.stack([g.log_prob(xv).double() for g in additive.components])
        brute = torch.log(sum(w[c] * torch.exp(lg[c]) for c in range(3)))
        torch.testing.assert_close(additive.log_prob(xv), brute, rtol=1e-9, atol=1e-9)


def test_one_component_equals_plain_flow(data):
    x, xv = data
    b = BoostedFlow(make, 1).fit(x, xv, epochs=2, batch_size=200, progress=False)
    with torch.no_grad():
        torch.testing.assert_close(b.log_prob(xv), b.components[0].log_prob(xv).double())
    assert float(b.rho[0]) == 1.0


def test_multiplicative_integrates_to_one(data):
    x, xv = data
    b = BoostedFlow(make, 2, "multiplicative", n_mc=40000).fit(x, xv, epochs=3, batch_size=200, progress=False)
    b.set_rho(torch.tensor([1.0, 0.5], dtype=torch.float64))  # a weight that surely mixes both
    b.log_z, b.log_z_se = b.estimate_log_z(n=40000)
    g = torch.linspace(-7, 7, 281)
    xx, yy = torch.meshgrid(g, g, indexing="ij")
    pts = torch.stack([xx.flatten(), yy.flatten()], 1)
    with torch.no_grad():
        mass = float(torch.exp(b.log_prob(pts)).sum() * (g[1] - g[0]) ** 2)
    # the quadrature of the normalized density is 1 within a few Monte Carlo standard errors
    assert abs(mass - 1.0) < max(4 * b.log_z_se, 0.02), (mass, b.log_z_se)


def test_reweighting_favours_badly_explained_points():
    # the fixed mixture is a component fit to cluster A only; cluster B (10% of the data)
    # is explained badly, so it must receive most of the resampling weight
    torch.manual_seed(0)
    a = torch.randn(900, 2) * 0.3 + torch.tensor([-2.0, 0.0])
    bpts = torch.randn(100, 2) * 0.3 + torch.tensor([2.0, 0.0])
    fixed = BoostedFlow(make, 1).fit(a, a[:100], epochs=5, batch_size=100, progress=False)
    w = fixed.resampling_weights(torch.cat([a, bpts]))
    share_b = float(w[900:].sum() / w.sum())
    assert share_b > 0.9, share_b


def _gaussian_mixture(centres, rho, mixture="additive"):
    """A BoostedFlow whose components are unit Gaussians at ``centres`` (no training), so
    that its samples and densities have closed forms."""
    b = BoostedFlow(make, len(centres), mixture)
    for c in centres:
        base = DiagonalGaussian(2)
        with torch.no_grad():
            base.mu.copy_(torch.tensor(c, dtype=torch.float32))
        b.components.append(Flow(base, [], (2,)).eval())
    b.set_rho(torch.tensor(rho, dtype=torch.float64))
    return b


def test_sample_draws_components_with_the_mixture_weights():
    # components far apart: each sample of BoostedFlow.sample is attributable to one of them
    centres = [(-20.0, 0.0), (0.0, 0.0), (20.0, 0.0)]
    b = _gaussian_mixture(centres, [1.0, 0.3, 0.5])
    w = b.weights()
    torch.testing.assert_close(w, torch.tensor([0.7 * 0.5, 0.3 * 0.5, 0.5], dtype=torch.float64))
    n = 20000
    s = b.sample(n, seed=1)
    assert s.shape == (n, 2) and torch.isfinite(s).all()
    which = torch.cdist(s.double(), torch.tensor(centres, dtype=torch.float64)).argmin(1)
    freq = torch.bincount(which, minlength=3).double() / n
    sd = torch.sqrt(w * (1 - w) / n)
    assert ((freq - w).abs() < 5 * sd).all(), (freq, w)
    for c, centre in enumerate(centres):  # and each group really comes from its component
        grp = s[which == c].double()
        torch.testing.assert_close(grp.mean(0), torch.tensor(centre, dtype=torch.float64), atol=0.1, rtol=0)
        torch.testing.assert_close(grp.std(0), torch.ones(2, dtype=torch.float64), atol=0.1, rtol=0)
    assert not torch.equal(s, b.sample(n, seed=2)) and torch.equal(s, b.sample(n, seed=1))


def test_multiplicative_mixture_of_gaussians_is_the_product():
    # prod_c N(x; mu_c, I)^{w_c} with sum w_c = 1 is N(x; sum_c w_c mu_c, I): normalizer and samples
    centres = [(-1.0, 0.5), (0.0, 0.0), (1.0, -0.5)]
    b = _gaussian_mixture(centres, [1.0, 0.3, 0.5], "multiplicative")
    w = b.weights()
    mean = (w[:, None] * torch.tensor(centres, dtype=torch.float64)).sum(0)
    b.log_z, b.log_z_se = b.estimate_log_z(n=20000)
    x = torch.randn(50, 2, dtype=torch.float64)
    exact = torch.distributions.MultivariateNormal(mean, torch.eye(2, dtype=torch.float64)).log_prob(x)
    torch.testing.assert_close(b.log_prob(x.float()), exact, atol=max(5 * b.log_z_se, 1e-3), rtol=0)
    s = b.sample(4000, seed=0).double()
    torch.testing.assert_close(s.mean(0), mean, atol=0.1, rtol=0)
    torch.testing.assert_close(s.var(0), torch.ones(2, dtype=torch.float64), atol=0.15, rtol=0)


def test_golden_section_finds_known_maximizers():
    pytest.importorskip("scipy", reason="the oracle is scipy's bounded scalar minimizer")
    from scipy.optimize import minimize_scalar

    from fastprob.models.gbnf import _golden

    for f in (lambda r: -(r - 0.3) ** 2, lambda r: math.log(r + 0.1) - 2 * r, lambda r: math.sin(3 * r)):
        oracle = minimize_scalar(lambda r: -f(r), bounds=(0, 1), method="bounded", options={"xatol": 1e-9}).x
        assert abs(_golden(f, tol=1e-6) - oracle) < 1e-4
    assert _golden(lambda r: r) == 1.0 and _golden(lambda r: -r) == 0.0  # maxima at the end points
    assert _golden(lambda r: math.nan if r > 0.5 else r) <= 0.5  # a non-finite value never wins


@pytest.mark.parametrize("method", ["line_search", "sgd"])
def test_rho_maximizes_held_out_likelihood(method):
    # validation data from 0.7 N(a) + 0.3 N(b): the held-out log-likelihood of
    # (1 - rho) g_a + rho g_b is maximized near rho = 0.3; the oracle maximizes it with scipy
    pytest.importorskip("scipy", reason="the oracle is scipy's bounded scalar minimizer")
    from scipy.optimize import minimize_scalar
    from scipy.stats import multivariate_normal

    b = _gaussian_mixture([(-1.5, 0.0), (1.5, 0.0)], [1.0, 0.5])
    b.rho_method = method
    g = np.random.default_rng(0)
    n = 4000
    pick = g.random(n) < 0.3
    xv = g.standard_normal((n, 2)) + np.where(pick[:, None], [1.5, 0.0], [-1.5, 0.0])
    la = multivariate_normal([-1.5, 0.0]).logpdf(xv)
    lb = multivariate_normal([1.5, 0.0]).logpdf(xv)
    objective = lambda r: -np.mean(np.logaddexp(np.log1p(-r) + la, np.log(r) + lb))  # noqa: E731
    oracle = minimize_scalar(objective, bounds=(1e-9, 1 - 1e-9), method="bounded", options={"xatol": 1e-9}).x
    assert abs(oracle - 0.3) < 0.05
    lg_val = b.component_log_probs(torch.tensor(xv, dtype=torch.float32))
    rho = b._choose_rho(lg_val, torch.ones(1, dtype=torch.float64))
    assert abs(rho - oracle) < (1e-3 if method == "line_search" else 2e-2), (rho, oracle)


def test_save_load_roundtrip(additive, data, tmp_path):
    _, xv = data
    additive.save(tmp_path / "b.pt")
    b2 = BoostedFlow.load(tmp_path / "b.pt", make)
    with torch.no_grad():
        torch.testing.assert_close(b2.log_prob(xv), additive.log_prob(xv))
    assert b2.history == additive.history


def test_conditional_gbnf():
    torch.manual_seed(0)
    y = torch.randn(600, 2)
    ctx = torch.randn(600, 3)
    y = y + ctx[:, :2]

    def mk(c):
        torch.manual_seed(c)
        return realnvp_vector(2, n_layers=2, hidden=16, context_dim=3)

    b = BoostedFlow(mk, 2, conditional=True).fit(y[:500], y[500:], ctx[:500], ctx[500:], epochs=2,
                                                 batch_size=100, progress=False)
    with torch.no_grad():
        lp = b.log_prob(y[500:], ctx[500:])
    assert lp.shape == (100,) and torch.isfinite(lp).all()
    assert b.sample(100, context=ctx[500:]).shape == (100, 2)
    with pytest.raises(ValueError, match="context"):
        BoostedFlow(mk, 2, conditional=True).fit(y, y, progress=False)


def test_bad_input(data):
    x, xv = data
    with pytest.raises(ValueError, match="n_components"):
        BoostedFlow(make, 0)
    with pytest.raises(ValueError, match="mixture"):
        BoostedFlow(make, 2, "geometric")
    with pytest.raises(ValueError, match="conditional multiplicative"):
        BoostedFlow(make, 2, "multiplicative", conditional=True)
    b = BoostedFlow(make, 1).fit(x, xv, epochs=1, progress=False)
    for bad in ([1.5], [-0.1], [float("nan")]):
        with pytest.raises(ValueError, match=r"\[0, 1\]"):
            b.set_rho(torch.tensor(bad, dtype=torch.float64))
    xn = x.clone()
    xn[3, 1] = float("nan")
    with pytest.raises(ValueError, match="NaN"):
        BoostedFlow(make, 1).fit(xn, xv, progress=False)
    with pytest.raises(RuntimeError, match="fit"):
        BoostedFlow(make, 2).log_prob(xv)


def test_toys_and_energies():
    for name in TOYS:
        pts = sample_toy(name, 500, seed=1)
        assert pts.shape == (500, 2) and np.isfinite(pts).all() and np.abs(pts).max() < 10
    z = torch.randn(100, 2)
    for name in ENERGIES:
        assert torch.isfinite(energy(name, z)).all()


def test_reverse_kl_density_matching():
    torch.manual_seed(0)
    u = lambda z: energy("U1", z)  # noqa: E731
    kl1 = fit_flow_reverse_kl(make(0), u, steps=150, batch=256)
    b = BoostedFlow(make, 2)
    kls = fit_boosted_reverse_kl(b, u, steps=150, batch=256)
    assert len(kls) == 2 and all(math.isfinite(k) for k in kls) and math.isfinite(kl1)
    # rho = 0 (keep the first component alone) is among the line search's choices, so adding
    # a component cannot make the mixture clearly worse (up to Monte Carlo error)
    assert kls[1] <= kls[0] + 0.02, kls


def test_reverse_kl_flow_density_is_consistent():
    # a flow trained through its inverse only must keep the density its samples came from
    # (a data-dependent ActNorm init firing at the first forward pass would change it)
    from fastprob.models.gbnf import rsample

    f = make(0)
    fit_flow_reverse_kl(f, lambda z: energy("U1", z), steps=20, batch=64)
    f.train()
    with torch.no_grad():
        z, log_q = rsample(f, 200)
        torch.testing.assert_close(f.log_prob(z), log_q, rtol=1e-4, atol=1e-4)
