"""Flow blocks: inverse(forward(x)) == x and logdet == slogdet of the autograd Jacobian (float64)."""
import pytest
import torch
from torch.autograd.functional import jacobian

from fastprob import BackendUnavailable
from fastprob.flows import (ActNorm, AffineCoupling, ChannelSplit, Flow, InvConv1x1, Logit, Squeeze,
                            SqueezeSplit, StandardNormal, VariationalDequantizer, VectorCoupling, bits_per_dim,
                            glow, glow_vector, ops, realnvp_image, realnvp_vector)


def _randomize(m, scale=0.3, seed=0):
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in m.parameters():
            p.add_(scale * torch.randn(p.shape, generator=g, dtype=p.dtype))
    return m.double()


def _check_block(block, shape, context=None, seed=0):
    torch.manual_seed(seed)
    x = torch.rand(1, *shape, dtype=torch.float64) * 0.8 + 0.1
    block.eval()
    z, ld = block(x, context)
    xb, ldb = block.inverse(z, context)
    torch.testing.assert_close(xb, x, rtol=1e-9, atol=1e-9)
    torch.testing.assert_close(ldb, -ld, rtol=1e-9, atol=1e-9)
    J = jacobian(lambda v: block(v.view(1, *shape), context)[0].reshape(-1), x.reshape(-1))
    sign, logabs = torch.linalg.slogdet(J)
    assert sign != 0
    torch.testing.assert_close(ld[0], logabs, rtol=1e-8, atol=1e-8)


@pytest.mark.parametrize("mask,parity", [("checkerboard", 0), ("checkerboard", 1), ("channel", 0), ("channel", 1)])
@pytest.mark.parametrize("scale_map", ["exp", "tanh", "bounded", "sigmoid"])
def test_affine_coupling(mask, parity, scale_map):
    blk = _randomize(AffineCoupling(3, mask, parity, scale_map, hidden=8))
    _check_block(blk, (3, 4, 4))


def test_conditional_coupling():
    ctx = torch.randn(1, 2, 4, 6, dtype=torch.float64)
    blk = _randomize(AffineCoupling(2, "checkerboard", 1, "bounded", hidden=8, context_channels=2))
    _check_block(blk, (2, 4, 6), context=ctx)
    with pytest.raises(ValueError, match="context"):
        blk(torch.randn(1, 2, 4, 6, dtype=torch.float64))


def test_actnorm_init_and_jacobian():
    a = ActNorm(3).double()
    x = torch.randn(64, 3, 4, 4, dtype=torch.float64) * 3 + 2
    a.train()
    z, _ = a(x)
    torch.testing.assert_close(z.mean((0, 2, 3)), torch.zeros(3, dtype=torch.float64), atol=1e-9, rtol=0)
    torch.testing.assert_close(z.std((0, 2, 3), unbiased=False), torch.ones(3, dtype=torch.float64), atol=1e-5, rtol=0)
    _check_block(a, (3, 2, 2))
    _check_block(_randomize(ActNorm(4)), (4,))


def test_invconv1x1():
    _check_block(_randomize(InvConv1x1(4, seed=1), 0.1), (4, 3, 3))
    _check_block(_randomize(InvConv1x1(5, seed=2), 0.1), (5,))


def test_squeeze_and_logit():
    for order in ("standard", "checkerboard"):
        _check_block(Squeeze(order).double(), (2, 4, 6))
    _check_block(Logit(0.05), (1, 4, 4))


@pytest.mark.parametrize("parity", [0, 1])
@pytest.mark.parametrize("scale_map", ["exp", "tanh", "bounded", "sigmoid"])
def test_vector_coupling(parity, scale_map):
    _check_block(_randomize(VectorCoupling(5, parity, scale_map, hidden=8)), (5,))
    ctx = torch.randn(1, 3, dtype=torch.float64)
    _check_block(_randomize(VectorCoupling(4, parity, scale_map, hidden=8, context_dim=3)), (4,), context=ctx)


@pytest.mark.parametrize("build", [
    lambda: realnvp_image((1, 4, 4), n_scales=2, n_couplings=2, hidden=8),
    lambda: realnvp_image((2, 8, 8), n_scales=3, n_couplings=1, hidden=8),
    lambda: glow((1, 4, 4), n_levels=2, depth=2, hidden=8),
    lambda: realnvp_vector(4, n_layers=4, hidden=8),
    lambda: Flow(StandardNormal(), [SqueezeSplit(), ActNorm(2), ChannelSplit()], (1, 4, 4)),
])
def test_whole_flows(build):
    f = _randomize(build(), 0.1)
    _check_block(f, f.event_shape)
    x = torch.rand(3, *f.event_shape, dtype=torch.float64) * 0.8 + 0.1
    lp = f.log_prob(x)
    # independent oracle: change of variables with the autograd Jacobian of the latent map
    # and the standard normal density of torch.distributions (not the flow's own logdet/base)
    normal = torch.distributions.Normal(torch.tensor(0.0, dtype=torch.float64), torch.tensor(1.0, dtype=torch.float64))
    for i in range(x.shape[0] if f.dim <= 16 else 0):  # the 128-d flow: ld vs slogdet above suffices
        zi = f(x[i:i + 1])[0].reshape(-1)
        J = jacobian(lambda v: f(v.view(1, *f.event_shape))[0].reshape(-1), x[i].reshape(-1), vectorize=True)
        oracle = normal.log_prob(zi).sum() + torch.linalg.slogdet(J)[1]
        torch.testing.assert_close(lp[i], oracle, rtol=1e-8, atol=1e-8)
    s = f.sample(5, temperature=0.5)
    assert s.shape == (5, *f.event_shape) and torch.isfinite(s).all()


@pytest.mark.parametrize("build,noise", [
    (lambda: realnvp_vector(2, n_layers=4, hidden=8), 0.3),
    (lambda: glow_vector(2, depth=3, hidden=8, seed=1), 0.3),
    (lambda: realnvp_vector(2, n_layers=3, hidden=8, scale_map="bounded", actnorm=False), 0.1)])
def test_two_d_density_integrates_to_one(build, noise):
    # a density must integrate to 1: a sign or factor error in any log-determinant breaks it
    # (noise: random weights that keep the density's mass inside the grid)
    torch.manual_seed(0)
    f = _randomize(build(), noise, seed=4)
    f.eval()
    g = torch.linspace(-9, 9, 361, dtype=torch.float64)
    xx, yy = torch.meshgrid(g, g, indexing="ij")
    with torch.no_grad():
        p = torch.exp(f.log_prob(torch.stack([xx.flatten(), yy.flatten()], 1)))
    mass = float(p.sum() * (g[1] - g[0]) ** 2)
    assert abs(mass - 1.0) < 5e-3, mass


def test_triton_backend_matches_torch_in_a_flow():
    pytest.importorskip("triton")
    # on a CUDA machine the Triton backend runs only on GPU tensors (the interpreter on CPU)
    dev = "cuda" if torch.cuda.is_available() else "cpu"
    torch.manual_seed(0)
    a = _randomize(realnvp_image((1, 4, 4), n_scales=2, n_couplings=2, hidden=8, backend="torch"), 0.1).float()
    b = _randomize(realnvp_image((1, 4, 4), n_scales=2, n_couplings=2, hidden=8, backend="triton"), 0.1).float()
    b.load_state_dict(a.state_dict())
    a, b = a.to(dev), b.to(dev)
    x = (torch.rand(2, 1, 4, 4) * 0.8 + 0.1).to(dev)
    la, lb = a.log_prob(x), b.log_prob(x)
    torch.testing.assert_close(la, lb, rtol=1e-4, atol=1e-4)
    ga = torch.autograd.grad(la.sum(), list(a.parameters()), allow_unused=True)
    gb = torch.autograd.grad(lb.sum(), list(b.parameters()), allow_unused=True)
    for u, v in zip(ga, gb):
        if u is not None:
            torch.testing.assert_close(u, v, rtol=1e-3, atol=1e-4)


def test_variational_dequantizer_and_bits():
    torch.manual_seed(0)
    dq = VariationalDequantizer((1, 4, 4), n_bins=17, n_layers=2, hidden=8)
    pix = torch.randint(0, 17, (3, 1, 4, 4))
    x, log_q = dq(pix)
    assert ((x * 17 - pix) >= 0).all() and ((x * 17 - pix) <= 1).all() and torch.isfinite(log_q).all()
    # a uniform density on [0,1]^D (log p = 0) with uniform dequantization is log2(n_bins) bits/dim
    assert abs(float(bits_per_dim(torch.zeros(1), 16, 17)) - torch.log2(torch.tensor(17.0)).item()) < 1e-6


def test_bad_inputs():
    with pytest.raises(ValueError, match="even"):
        Flow(StandardNormal(), [Squeeze()], (1, 5, 4))
    with pytest.raises(ValueError, match="even"):
        Squeeze()(torch.randn(1, 1, 5, 4))
    with pytest.raises(ValueError, match="channels"):
        AffineCoupling(3, "checkerboard")(torch.randn(1, 2, 4, 4))
    with pytest.raises(ValueError, match="at least 2 channels"):
        AffineCoupling(1, "channel")
    with pytest.raises(ValueError, match="scale map"):
        AffineCoupling(2, "channel", scale_map="relu")
    f = realnvp_vector(4)
    with pytest.raises(ValueError, match="shape"):
        f.log_prob(torch.randn(2, 5))
    # NaN from the scale network is an error, not silent garbage
    blk = AffineCoupling(2, "checkerboard", hidden=4)
    with torch.no_grad():
        blk.net.net[-1].bias.fill_(float("nan"))
    with pytest.raises(FloatingPointError, match="NaN"):
        blk(torch.randn(1, 2, 4, 4))
    # mixed devices and impossible backend requests
    with pytest.raises(ValueError, match="different devices"):
        ops.coupling(torch.randn(1, 2, 2, 2), torch.randn(1, 2, 2, 2, device="meta"), torch.randn(1, 2, 2, 2),
                     "checkerboard", 0, "exp")


def test_explicit_triton_request_without_gpu(monkeypatch):
    if torch.cuda.is_available():
        pytest.skip("this machine has a GPU; the request can be honoured")
    from fastprob import _config

    monkeypatch.setenv("TRITON_INTERPRET", "0")
    _config.reload()
    x = torch.randn(1, 2, 4, 4)
    try:
        with pytest.raises(BackendUnavailable, match="CUDA"):
            ops.coupling(x, x, x, "checkerboard", 0, "exp", backend="triton")
    finally:
        monkeypatch.undo()
        _config.reload()
    # automatic choice falls back to the reference on CPU
    y, ld = ops.coupling(x, x, x, "checkerboard", 0, "exp")
    assert torch.isfinite(y).all()
