"""PPCAStep against independent oracles: dense MultivariateNormal, dense Gaussian
conditioning, autograd gradients and L-BFGS at the closed-form maximum."""
import math

import pytest
import torch
from torch.distributions import MultivariateNormal

from fastprob.flows import PPCAStep

torch.set_num_threads(1)


def random_step(D, d, seed=0):
    g = torch.Generator().manual_seed(seed)
    st = PPCAStep(D, d).double()
    st.set_params(mu=torch.randn(D, generator=g, dtype=torch.float64),
                  A=torch.randn(D, d, generator=g, dtype=torch.float64),
                  s2=0.1 + torch.rand(1, generator=g).item())
    return st


def dense_cov(st):
    return st.A @ st.A.T + st.s2 * torch.eye(st.D, dtype=torch.float64)


def low_rank_data(n, D, d, seed=0, noise=0.3):
    g = torch.Generator().manual_seed(seed)
    W = torch.randn(D, d, generator=g, dtype=torch.float64) * torch.linspace(3, 1.5, d, dtype=torch.float64)
    z = torch.randn(n, d, generator=g, dtype=torch.float64)
    return z @ W.T + 2.0 + noise * torch.randn(n, D, generator=g, dtype=torch.float64)


@pytest.mark.parametrize("D,d", [(2, 1), (5, 2), (17, 4), (64, 8), (64, 63)])
def test_log_prob_equals_dense_mvn(D, d):
    st = random_step(D, d, seed=D + d)
    x = st.sample(13, generator=torch.Generator().manual_seed(1)) * 1.5
    ref = MultivariateNormal(st.mu.detach(), covariance_matrix=dense_cov(st).detach()).log_prob(x)
    got = st.log_prob(x)
    assert torch.allclose(got, ref, atol=1e-9, rtol=0), (got - ref).abs().max()


def test_log_prob_gradient_equals_dense_mvn():
    st = random_step(9, 3, seed=3)
    x = st.sample(7, generator=torch.Generator().manual_seed(2))
    st.log_prob(x).sum().backward()
    g_fast = [p.grad.clone() for p in (st.A, st.mu, st.log_s2)]
    st.zero_grad()
    MultivariateNormal(st.mu, covariance_matrix=dense_cov(st)).log_prob(x).sum().backward()
    for a, b in zip(g_fast, (st.A.grad, st.mu.grad, st.log_s2.grad)):
        assert torch.allclose(a, b, atol=1e-9)


@pytest.mark.parametrize("D,d", [(4, 1), (12, 5), (40, 7)])
def test_posterior_equals_dense_conditioning(D, d):
    st = random_step(D, d, seed=11 * D)
    x = st.sample(6, generator=torch.Generator().manual_seed(3)).detach()
    # joint Gaussian of (z, z'): cov(z, z') = A^T, cov(z', z') = C; condition on z'
    C = dense_cov(st).detach()
    A = st.A.detach()
    K = torch.linalg.solve(C, A).T                       # A^T C^-1
    mean_ref = (x - st.mu.detach()) @ K.T
    cov_ref = torch.eye(d, dtype=torch.float64) - K @ A
    mean, cov = st.posterior(x)
    assert torch.allclose(mean, mean_ref, atol=1e-9)
    assert torch.allclose(cov, cov_ref, atol=1e-9)


def test_forward_contribution_gives_exact_log_prob_with_a_standard_normal_base():
    st = random_step(10, 3, seed=5)
    st.sample_posterior = True
    x = st.sample(8, generator=torch.Generator().manual_seed(4))
    ref = MultivariateNormal(st.mu.detach(), covariance_matrix=dense_cov(st).detach()).log_prob(x)
    for training in (True, False):
        st.train(training)
        z, c = st(x)
        assert z.shape == (8, 3)
        base = -0.5 * (z * z).sum(1) - 1.5 * math.log(2 * math.pi)
        assert torch.allclose(base + c, ref, atol=1e-9)


def test_sample_moments():
    st = random_step(6, 2, seed=9)
    x = st.sample(200000, generator=torch.Generator().manual_seed(0))
    C = dense_cov(st).detach()
    assert torch.allclose(x.mean(0), st.mu.detach(), atol=4 * C.diagonal().max().sqrt() / 400)
    assert torch.allclose(torch.cov(x.T), C, atol=0.05 * C.abs().max())


def mean_ll(x, mu, A, log_s2):
    C = A @ A.T + log_s2.exp() * torch.eye(A.shape[0], dtype=A.dtype)
    return MultivariateNormal(mu, covariance_matrix=C).log_prob(x).mean()


def test_closed_form_fit_is_the_maximum():
    x = low_rank_data(200, 8, 2)
    st = PPCAStep(8, 2).double().fit(x)
    best = float(st.log_prob(x).mean().detach())
    # 1. the dense-likelihood gradient vanishes at the fit
    params = [st.mu.detach().clone().requires_grad_(), st.A.detach().clone().requires_grad_(),
              st.log_s2.detach().clone().requires_grad_()]
    mean_ll(x, *params).backward()
    gnorm = max(float(p.grad.abs().max()) for p in params)
    assert gnorm < 1e-8, gnorm
    # 2. L-BFGS from random starts on the dense likelihood never beats it
    for seed in range(3):
        g = torch.Generator().manual_seed(seed)
        p = [torch.randn(8, generator=g, dtype=torch.float64).requires_grad_(),
             torch.randn(8, 2, generator=g, dtype=torch.float64).requires_grad_(),
             torch.zeros((), dtype=torch.float64).requires_grad_()]
        opt = torch.optim.LBFGS(p, max_iter=300, tolerance_grad=1e-12, tolerance_change=1e-15,
                                line_search_fn="strong_wolfe")

        def closure():
            opt.zero_grad()
            loss = -mean_ll(x, *p)
            loss.backward()
            return loss

        opt.step(closure)
        found = float(mean_ll(x, *p).detach())
        assert found <= best + 1e-9
        assert found > best - 1e-3  # the optimizer did reach the optimum (the test is not vacuous)


@pytest.mark.parametrize("method", ["exact", "randomized"])
def test_fit_with_fewer_rows_than_latent_dims(method):
    # 6 rows, d = 8: the centred data has rank 5 < d (compressing a flow trained on few images);
    # oracle: with s2 held at min_s2 the maximum is C = U diag(max(l_i, s2)) U^T over the
    # eigenpairs of the dense sample covariance (all but 5 eigenvalues are 0)
    x = low_rank_data(6, 20, 3, seed=4)
    s2 = 0.05
    with pytest.warns(RuntimeWarning, match="6 rows for a 8-dimensional latent"):
        st = PPCAStep(20, 8).double().fit(x, method=method, min_s2=s2)
    lam, U = torch.linalg.eigh(torch.cov(x.T, correction=0))
    C_ref = U @ torch.diag(lam.clamp_min(s2)) @ U.T
    assert float(st.s2.detach()) == pytest.approx(s2, rel=1e-12)
    assert torch.allclose(dense_cov(st), C_ref, atol=1e-9)
    assert torch.allclose(st.mu, x.mean(0), atol=1e-12)
    assert torch.allclose(st.log_prob(x), MultivariateNormal(x.mean(0), covariance_matrix=C_ref).log_prob(x),
                          atol=1e-8)


def test_randomized_fit_matches_exact():
    x = low_rank_data(300, 200, 4, seed=2)
    a = PPCAStep(200, 4).double().fit(x, method="exact")
    b = PPCAStep(200, 4).double().fit(x, method="randomized")
    assert torch.allclose(a.A @ a.A.T, b.A @ b.A.T, atol=1e-6)
    assert abs(float(a.s2) - float(b.s2)) < 1e-8


def test_em_converges_to_closed_form():
    x = low_rank_data(500, 8, 3, seed=7, noise=1.0)
    ref = PPCAStep(8, 3).double().fit(x)
    st = PPCAStep(8, 3, seed=3).double()
    hist = st.fit_em(x, n_iter=3000, batch_size=64, tol=1e-13)
    assert all(b >= a - 1e-12 for a, b in zip(hist, hist[1:]))  # EM never decreases the likelihood
    assert abs(hist[-1] - float(ref.log_prob(x).mean())) < 1e-9
    C_em, C_ref = (st.A @ st.A.T).detach(), (ref.A @ ref.A.T).detach()
    assert float((C_em - C_ref).abs().max() / C_ref.abs().max()) < 1e-5
    assert abs(float(st.s2) / float(ref.s2) - 1) < 1e-7
    assert torch.allclose(st.mu, ref.mu, atol=1e-12)


def test_never_forms_a_D_by_D_matrix():
    # D = 200,000: a dense D x D covariance would need 320 GB
    D, d = 200_000, 3
    g = torch.Generator().manual_seed(0)
    x = torch.randn(16, D, generator=g)
    st = PPCAStep(D, d).fit(x, method="randomized")
    lp = st.log_prob(x[:4])
    assert lp.shape == (4,) and torch.isfinite(lp).all()


def test_bad_input():
    with pytest.raises(ValueError, match="0 < d < D"):
        PPCAStep(5, 5)
    with pytest.raises(ValueError, match="0 < d < D"):
        PPCAStep(5, 0)
    with pytest.raises(ValueError, match="s2"):
        PPCAStep(5, 2, s2=0.0)
    with pytest.raises(ValueError, match="s2"):
        PPCAStep(5, 2).set_params(s2=-1.0)
    st = PPCAStep(5, 2)
    with pytest.raises(ValueError, match="NaN"):
        st.log_prob(torch.tensor([[0.0, 1.0, float("nan"), 0.0, 0.0]]))
    with pytest.raises(ValueError, match=r"\(B, 5\)"):
        st.log_prob(torch.zeros(3, 4))
    with pytest.raises(ValueError, match="NaN"):
        st.fit(torch.full((4, 5), float("nan")))
    with pytest.raises(ValueError, match="method"):
        st.fit(torch.randn(10, 5), method="qr")
