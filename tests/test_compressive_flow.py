"""Whole compressive flows: exact likelihood against an autograd-Jacobian + dense-Gaussian
oracle, bounds never above it, the corrected dual-base objective, round trips, errors."""
import math

import pytest
import torch
from torch.distributions import MultivariateNormal

from fastprob.flows import (CompressiveFlow, LinearVAEStep, PPCAStep, SliceStep, VAEStep, intermixed_flow,
                            realnvp_vector)
from fastprob.flows.squeeze import ChannelSplit

torch.set_num_threads(1)
f64 = torch.float64


def random_bijection(D, seed=0):
    torch.manual_seed(seed)
    f = realnvp_vector(D, n_layers=3, hidden=16).double()
    with torch.no_grad():  # couplings start as the identity; make them do something
        for p in f.parameters():
            p.add_(0.3 * torch.randn_like(p))
    f.eval()
    return f


def exact_log_prob(bij, C, mu, x):
    """log N(g(x); mu, C) + log|det dg/dx| with the Jacobian from autograd (float64)."""
    out = []
    for xi in x:
        J = torch.autograd.functional.jacobian(lambda v: bij(v[None])[0][0], xi)
        zi = bij(xi[None])[0][0]
        out.append(MultivariateNormal(mu, covariance_matrix=C).log_prob(zi) + torch.linalg.slogdet(J)[1])
    return torch.stack(out).detach()


def ppca_params(D, d, seed=1):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(D, d, generator=g, dtype=f64), torch.randn(D, generator=g, dtype=f64), 0.4


def test_ppca_flow_is_exact_and_linear_vae_bounds_it():
    D, d = 5, 2
    bij = random_bijection(D)
    A, mu, s2 = ppca_params(D, d)
    C = A @ A.T + s2 * torch.eye(D, dtype=f64)
    x = torch.randn(6, D, dtype=f64)
    ref = exact_log_prob(bij, C, mu, x)
    ppca = PPCAStep(D, d).double().set_params(mu=mu, A=A, s2=s2)
    flow = CompressiveFlow([bij, ppca], (D,)).eval()
    assert torch.allclose(flow.log_prob(x).detach(), ref, atol=1e-9)
    lv = LinearVAEStep(D, d).double()
    with torch.no_grad():
        lv.A.copy_(A), lv.mu.copy_(mu), lv.log_s2.fill_(math.log(s2))
    lv.set_optimal_encoder()
    fl = CompressiveFlow([bij, lv], (D,)).eval()
    assert torch.allclose(fl.log_prob(x).detach(), ref, atol=1e-9)
    with torch.no_grad():
        lv.B.add_(0.1)
    assert (fl.log_prob(x).detach() < ref - 1e-8).all()


def test_vae_flow_bound_never_above_exact():
    D, d = 5, 2
    bij = random_bijection(D, seed=3)
    A, mu, s2 = ppca_params(D, d, seed=2)
    C = A @ A.T + s2 * torch.eye(D, dtype=f64)
    st = VAEStep(D, d, hidden=()).double()
    with torch.no_grad():
        st.decoder[0].weight.copy_(A), st.decoder[0].bias.copy_(mu), st.log_sigma.fill_(0.5 * math.log(s2))
        # an imperfect encoder near the exact posterior (shifted mean map, inflated scales)
        M = A.T @ A + s2 * torch.eye(d, dtype=f64)
        B = torch.linalg.solve(M, A.T) + 0.05
        st.encoder[0].weight.copy_(torch.cat([B, torch.zeros(d, D, dtype=f64)]))
        sd = 1.3 * torch.sqrt(torch.diagonal(s2 * torch.linalg.inv(M)))
        st.encoder[0].bias.copy_(torch.cat([-B @ mu, torch.log(sd)]))
    flow = CompressiveFlow([bij, st], (D,))
    x = torch.randn(4, D, dtype=f64)
    ref = exact_log_prob(bij, C, mu, x)
    torch.manual_seed(0)
    S = 4000
    with torch.no_grad():
        lp = flow.log_prob(x.repeat(S, 1)).view(S, 4)
        iw = flow.log_prob_iw(x, k=500)
    se = lp.std(0) / math.sqrt(S)
    assert (lp.mean(0) < ref + 3 * se).all()    # the expected bound is below the exact value
    assert (lp.mean(0) < ref).all()
    assert (abs(iw - ref) < 0.05).all() and (iw > lp.mean(0)).all()


def test_slice_flow_is_exact():
    D, d = 6, 2
    bij = random_bijection(D, seed=5)
    sl = SliceStep(D, d).double()
    with torch.no_grad():
        sl.m.copy_(torch.linspace(-1, 1, D - d)), sl.log_sd.copy_(torch.linspace(-0.5, 0.5, D - d))
    cov = torch.diag(torch.cat([torch.exp(2 * sl.log_sd.detach()), torch.ones(d, dtype=f64)]))
    mean = torch.cat([sl.m.detach(), torch.zeros(d, dtype=f64)])
    x = torch.randn(5, D, dtype=f64)
    flow = CompressiveFlow([bij, sl], (D,))
    assert torch.allclose(flow.log_prob(x).detach(), exact_log_prob(bij, cov, mean, x), atol=1e-9)


def test_dual_base_objective_is_the_corrected_eq_5_6():
    D, d = 5, 2
    bij = random_bijection(D, seed=7)
    A, mu, s2 = ppca_params(D, d, seed=4)
    flow = CompressiveFlow([bij, PPCAStep(D, d).double().set_params(mu=mu, A=A, s2=s2)], (D,))
    x = torch.randn(3, D, dtype=f64)
    plain = bij.log_prob(x).detach()                     # bijective flow with the N(0, I_D) base
    C = A @ A.T + s2 * torch.eye(D, dtype=f64)
    zp = bij(x)[0].detach()
    ppca_ll = MultivariateNormal(mu, covariance_matrix=C).log_prob(zp)
    for alpha in (0.0, 0.3, 1.0):
        got = flow.dual_base_objective(x, alpha).detach()
        assert torch.allclose(got, plain + alpha * ppca_ll, atol=1e-9)
    with pytest.raises(ValueError, match="alpha"):
        flow.dual_base_objective(x, 1.5)


def test_round_trips():
    D, d = 6, 2
    bij = random_bijection(D, seed=9)
    A, mu, _ = ppca_params(D, d, seed=6)
    ppca = PPCAStep(D, d).double().set_params(mu=mu, A=A, s2=1e-12)
    flow = CompressiveFlow([bij, ppca], (D,))
    z = torch.randn(7, d, dtype=f64)
    x = flow.decode(z)                                   # lies on the PPCA subspace, pulled back
    z2, _ = flow(x)
    assert torch.allclose(z2, z, atol=1e-6)
    assert torch.allclose(flow.decode(z2), x, atol=1e-6)
    s = flow.sample(11)
    assert s.shape == (11, D) and torch.isfinite(s).all()
    # the decoded mean of any x is the bijective pre-image of its PPCA reconstruction
    ppca.set_params(s2=0.5)
    xr = torch.randn(4, D, dtype=f64)
    zq, _ = flow(xr)
    zp = bij(xr)[0]
    M = A.T @ A + 0.5 * torch.eye(d, dtype=f64)
    recon = (zp - mu) @ A @ torch.linalg.inv(M) @ A.T + mu
    assert torch.allclose(flow.decode(zq), bij.inverse(recon)[0], atol=1e-9)


def test_intermixed_shapes_and_gradients():
    torch.manual_seed(0)
    fl = intermixed_flow((1, 8, 8), 0.25, n_couplings=1, hidden=8)
    assert fl.latent_dim == 16
    x = torch.rand(3, 1, 8, 8) * 0.9 + 0.05
    lp = fl.log_prob(x)
    assert lp.shape == (3,) and torch.isfinite(lp).all()
    (-lp.mean()).backward()
    assert all(p.grad is not None for p in fl.parameters() if p.requires_grad)
    obj = fl.dual_base_objective(x, 0.5)
    assert obj.shape == (3,) and torch.isfinite(obj).all()
    assert fl.sample(2).shape == (2, 1, 8, 8)


def test_bad_input():
    bij = random_bijection(4)
    flow = CompressiveFlow([bij, PPCAStep(4, 2).double()], (4,))
    with pytest.raises(ValueError, match=r"\(B, 4\)"):
        flow.log_prob(torch.zeros(2, 5, dtype=f64))
    with pytest.raises(ValueError, match="NaN"):
        flow.log_prob(torch.full((2, 4), float("nan"), dtype=f64))
    with pytest.raises(ValueError, match="latents"):
        flow.decode(torch.zeros(2, 3, dtype=f64))
    with pytest.raises(ValueError, match="expects 5 inputs"):
        CompressiveFlow([PPCAStep(5, 2)], (4,))
    with pytest.raises(TypeError, match="Split"):
        CompressiveFlow([ChannelSplit(), PPCAStep(4, 2)], (4,))
    with pytest.raises(ValueError, match="0 < d < D"):
        SliceStep(4, 4)
    with pytest.raises(ValueError, match="multiples of 4"):
        intermixed_flow((1, 6, 6), 0.5)
