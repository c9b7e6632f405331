"""Linear VAE and Gaussian VAE steps against the exact PPCA marginal and posterior
(dense torch.distributions oracles)."""
import math

import pytest
import torch
from torch.distributions import MultivariateNormal, kl_divergence

from fastprob.flows import LinearVAEStep, VAEStep

torch.set_num_threads(1)
f64 = torch.float64


def random_decoder(step, seed):
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        step.A.copy_(torch.randn(step.D, step.d, generator=g, dtype=f64))
        step.mu.copy_(torch.randn(step.D, generator=g, dtype=f64))
        step.log_s2.fill_(math.log(0.3))
    return step


def exact(step, x):
    """Dense marginal and posterior of the linear-Gaussian model (independent of the step's code)."""
    A, mu, s2 = step.A.detach(), step.mu.detach(), float(step.s2)
    C = A @ A.T + s2 * torch.eye(step.D, dtype=f64)
    K = torch.linalg.solve(C, A).T
    post_mean = (x - mu) @ K.T
    post_cov = torch.eye(step.d, dtype=f64) - K @ A
    return MultivariateNormal(mu, covariance_matrix=C).log_prob(x), post_mean, post_cov


def data(step, n=9, seed=1):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(n, step.D, generator=g, dtype=f64) * 2 + step.mu.detach()


@pytest.mark.parametrize("D,d", [(5, 1), (10, 3), (32, 6)])
def test_linear_vae_elbo_equals_ppca_at_the_optimal_encoder(D, d):
    st = random_decoder(LinearVAEStep(D, d).double(), seed=D).set_optimal_encoder()
    x = data(st)
    ref, _, _ = exact(st, x)
    assert torch.allclose(st.elbo(x), ref, atol=1e-9)
    z, c = st(x)
    assert torch.allclose(-0.5 * (z * z).sum(1) - 0.5 * d * math.log(2 * math.pi) + c, ref, atol=1e-9)


def test_linear_vae_elbo_is_strictly_below_elsewhere_by_the_kl_to_the_posterior():
    st = random_decoder(LinearVAEStep(8, 3).double(), seed=4).set_optimal_encoder()
    x = data(st, n=6)
    ref, pm, pc = exact(st, x)
    g = torch.Generator().manual_seed(0)
    for trial in range(4):
        with torch.no_grad():
            for p in (st.B, st.enc_log_sd, st.enc_lower):
                p.add_(0.05 * torch.randn(p.shape, generator=g, dtype=f64))
        elbo = st.elbo(x)
        assert (elbo < ref - 1e-8).all()
        # ELBO = log p(x) - KL(q(z|x) || p(z|x)); the KL from torch.distributions
        m, L = st.encode(x)
        kl = kl_divergence(MultivariateNormal(m, scale_tril=L.expand(x.shape[0], 3, 3)),
                           MultivariateNormal(pm, covariance_matrix=pc))
        assert torch.allclose(ref - elbo, kl, atol=1e-9)


def test_linear_vae_elbo_matches_monte_carlo():
    st = random_decoder(LinearVAEStep(6, 2, encoder_cov="diag").double(), seed=2)
    x = data(st, n=2)
    m, L = st.encode(x)
    q = MultivariateNormal(m, scale_tril=L.expand(2, 2, 2))
    z = q.sample((200000,))                                             # (S, B, d)
    dec = MultivariateNormal(z @ st.A.T + st.mu, covariance_matrix=float(st.s2) * torch.eye(6, dtype=f64))
    prior = MultivariateNormal(torch.zeros(2, dtype=f64), torch.eye(2, dtype=f64))
    w = (dec.log_prob(x) + prior.log_prob(z) - q.log_prob(z)).detach()
    mc, se = w.mean(0), w.std(0) / math.sqrt(w.shape[0])
    assert (abs(st.elbo(x).detach() - mc) < 5 * se + 1e-9).all()


def test_linear_vae_fit_is_exact():
    g = torch.Generator().manual_seed(3)
    x = torch.randn(300, 3, generator=g, dtype=f64) @ torch.randn(3, 9, generator=g, dtype=f64)
    x = x + 0.5 * torch.randn(300, 9, generator=g, dtype=f64)
    st = LinearVAEStep(9, 3).double().fit(x)
    ref, _, _ = exact(st, x)
    assert torch.allclose(st.elbo(x), ref, atol=1e-9)


def linear_vae_step(D, d, seed=0):
    """A VAEStep with linear encoder/decoder whose marginal is N(mu, A A^T + s2 I)."""
    st = VAEStep(D, d, hidden=()).double()
    g = torch.Generator().manual_seed(seed)
    A = torch.randn(D, d, generator=g, dtype=f64)
    mu = torch.randn(D, generator=g, dtype=f64)
    s2 = 0.5
    M = A.T @ A + s2 * torch.eye(d, dtype=f64)
    B = torch.linalg.solve(M, A.T)
    with torch.no_grad():
        st.decoder[0].weight.copy_(A)
        st.decoder[0].bias.copy_(mu)
        st.log_sigma.fill_(0.5 * math.log(s2))
        # a deliberately imperfect diagonal encoder: perturbed mean map, inflated scales
        Bq = B + 0.2 * torch.randn(d, D, generator=g, dtype=f64)
        st.encoder[0].weight.copy_(torch.cat([Bq, torch.zeros(d, D, dtype=f64)]))
        sd = torch.sqrt(torch.diagonal(s2 * torch.linalg.inv(M))) * 1.5
        st.encoder[0].bias.copy_(torch.cat([-Bq @ mu, torch.log(sd)]))
    C = A @ A.T + s2 * torch.eye(D, dtype=f64)
    return st, MultivariateNormal(mu, covariance_matrix=C)


def test_vae_step_bound_below_exact_and_importance_sampling_closes_the_gap():
    torch.manual_seed(0)
    st, marginal = linear_vae_step(6, 2)
    x = marginal.sample((3,))
    exact_lp = marginal.log_prob(x)
    S = 20000
    with torch.no_grad():
        xs = x.repeat(S, 1)
        z, c = st(xs)
        bound = (c - 0.5 * (z * z).sum(1) - math.log(2 * math.pi)).view(S, 3)
    elbo, se = bound.mean(0), bound.std(0) / math.sqrt(S)
    gap = exact_lp - elbo
    assert (gap > 10 * se).all() and (gap > 0.05).all()   # a real, resolved gap
    iw = st.importance_log_prob(x, k=5000)
    assert (abs(iw - exact_lp) < 0.1 * gap).all(), (iw, exact_lp, gap)


def test_vae_step_shapes_conv_and_errors():
    st = VAEStep(12, 4, hidden=(16,))
    z, c = st(torch.randn(5, 12))
    assert z.shape == (5, 4) and c.shape == (5,)
    assert st.inverse(z)[0].shape == (5, 12)
    cv = VAEStep.conv(4, 2, hidden=8)
    z, c = cv(torch.randn(3, 4, 6, 6))
    assert z.shape == (3, 2, 6, 6) and c.shape == (3,) and cv.out_shape((4, 6, 6)) == (2, 6, 6)
    assert cv.decode(z).shape == (3, 4, 6, 6)
    with pytest.raises(ValueError, match="0 < d < D"):
        VAEStep(4, 4)
    with pytest.raises(ValueError, match="0 < d < D"):
        VAEStep.conv(2, 3)
    with pytest.raises(ValueError, match="NaN"):
        st(torch.full((2, 12), float("nan")))
    with pytest.raises(ValueError, match="shape"):
        st(torch.randn(2, 11))
    with pytest.raises(ValueError, match="0 < d < D"):
        LinearVAEStep(3, 3)
    with pytest.raises(ValueError, match="s2"):
        LinearVAEStep(5, 2, s2=-1)
    with pytest.raises(ValueError, match="encoder_cov"):
        LinearVAEStep(5, 2, encoder_cov="band")
