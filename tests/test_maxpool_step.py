"""Max-pool surjection step: its log p(x | z) against a block-by-block torch.distributions
brute force, normalization of p(x | z) on a grid, sampling round trips and the sampled
distribution, whole flows equal to the sum of their parts (autograd Jacobians), errors."""
import math

import pytest
import torch
import torch.nn.functional as F
from scipy import stats
from torch.distributions import HalfNormal, Normal

from fastprob.cli import main
from fastprob.flows import AffineCoupling, CompressiveFlow, MaxPoolStep, realnvp_image
from fastprob.flows.compressive_train import build_compressive
from fastprob.flows.maxpool import maxpool_count

torch.set_num_threads(1)
f64 = torch.float64


def random_step(shape, hidden, seed=0):
    """A step whose scales differ per channel and, with a net, depend on z."""
    torch.manual_seed(seed)
    st = MaxPoolStep(shape, hidden=hidden).double()
    with torch.no_grad():
        st.log_scale.copy_(0.4 * torch.randn(shape[0], dtype=f64))
        if st.net is not None:
            for p in st.net.parameters():
                p.copy_(0.25 * torch.randn_like(p))
    return st


def brute_force_log_p_x_given_z(step, x):
    """sum over 2x2 blocks of log 1/4 + sum_{i != argmax} log HalfNormal(z - x_i; s_i), one block
    at a time; z from F.max_pool2d, the scales s_i from the step (the only thing shared)."""
    B, C, H, W = x.shape
    z = F.max_pool2d(x, 2)
    scales = torch.exp(step.log_scales(z))
    out = []
    for b in range(B):
        tot = torch.zeros((), dtype=x.dtype)
        for c in range(C):
            for i in range(H // 2):
                for j in range(W // 2):
                    vals = [x[b, c, 2 * i + di, 2 * j + dj] for di in (0, 1) for dj in (0, 1)]
                    k = max(range(4), key=lambda p: float(vals[p]))
                    tot = tot + math.log(0.25)
                    for p in range(4):
                        if p != k:
                            tot = tot + HalfNormal(scales[b, c, i, j, p]).log_prob(z[b, c, i, j] - vals[p])
        out.append(tot)
    return z, torch.stack(out)


@pytest.mark.parametrize("hidden", [0, 6])
def test_contribution_equals_brute_force(hidden):
    step = random_step((2, 4, 6), hidden)
    x = torch.randn(3, 2, 4, 6, dtype=f64)
    z, c = step(x)
    z_ref, c_ref = brute_force_log_p_x_given_z(step, x)
    assert torch.equal(z, z_ref)
    assert torch.allclose(c.detach(), c_ref.detach(), atol=1e-10, rtol=0)
    # flat input (a multi-scale flow's latent) is read in the step's image shape
    z2, c2 = step(x.flatten(1))
    assert torch.equal(z2, z) and torch.allclose(c2, c)


def test_gradients_match_finite_differences():
    step = random_step((1, 2, 4), 3)
    x = torch.randn(2, 1, 2, 4, dtype=f64, requires_grad=True)
    params = [step.log_scale] + list(step.net.parameters())

    assert torch.autograd.gradcheck(lambda x: step(x)[1], (x,))
    # parameter gradients against central differences of the contribution
    c = step(x.detach())[1].sum()
    grads = torch.autograd.grad(c, params)
    eps = 1e-6
    for p, g in zip(params, grads):
        flat = p.detach().view(-1)
        for idx in range(min(flat.numel(), 5)):
            with torch.no_grad():
                old = float(flat[idx])
                flat[idx] = old + eps
                up = float(step(x.detach())[1].sum())
                flat[idx] = old - eps
                dn = float(step(x.detach())[1].sum())
                flat[idx] = old
            assert abs((up - dn) / (2 * eps) - float(g.view(-1)[idx])) < 1e-6


@pytest.mark.parametrize("hidden", [0, 4])
def test_conditional_density_integrates_to_one(hidden):
    """p(x | z) lives on {max x = z}: for each argmax position k, integrate the step's
    exp(contribution) over the other 3 values on a grid (trapezoid); the 4 integrals must sum
    to 1.  The grid starts 1e-12 below z (u = 0 off the argmax would be a tie)."""
    step = random_step((1, 2, 2), hidden, seed=5)
    z0 = -0.7
    z = torch.full((1, 1, 1, 1), z0, dtype=f64)
    s_max = float(torch.exp(step.log_scales(z)).max().detach())
    n = 61
    g = torch.linspace(1e-12, 9 * s_max, n, dtype=f64)
    w = torch.full((n,), float(g[2] - g[1]), dtype=f64)
    w[0] = w[-1] = w[0] / 2
    u = torch.stack([t.flatten() for t in torch.meshgrid(g, g, g, indexing="ij")], 1)
    wts = (w[:, None, None] * w[None, :, None] * w[None, None, :]).flatten()
    total = 0.0
    with torch.no_grad():
        for k in range(4):
            blk = torch.zeros(u.shape[0], 4, dtype=f64)
            blk[:, [p for p in range(4) if p != k]] = -u
            zk, c = step((z0 + blk).reshape(-1, 1, 2, 2))
            assert torch.all(zk == z0)
            total += float((torch.exp(c) * wts).sum())
    assert abs(total - 1.0) < 2e-3


@pytest.mark.parametrize("hidden", [0, 5])
def test_sampling_round_trip_and_distribution(hidden):
    step = random_step((2, 4, 4), hidden, seed=1)
    torch.manual_seed(7)
    z = torch.randn(1500, 2, 2, 2, dtype=f64)
    x = step.sample_given(z)
    assert x.shape == (1500, 2, 4, 4)
    z_back, c = step(x)
    assert torch.equal(z_back, z)  # the forward map recovers z exactly
    assert torch.isfinite(c).all()
    # argmax position uniform over the 4 cells (chi-square), offsets half-normal at the step's scales (KS)
    blocks = x.reshape(1500, 2, 2, 2, 2, 2).permute(0, 1, 2, 4, 3, 5).reshape(1500, 2, 2, 2, 4)
    k = blocks.argmax(-1)
    counts = torch.bincount(k.flatten(), minlength=4).numpy()
    assert stats.chisquare(counts).pvalue > 1e-3
    scales = torch.exp(step.log_scales(z))
    r = ((z.unsqueeze(-1) - blocks) / scales)[blocks != z.unsqueeze(-1)]
    assert r.numel() == 3 * 1500 * 8
    assert stats.kstest(r.detach().numpy(), stats.halfnorm.cdf).pvalue > 1e-3


def jac_logdet(fn, x):
    """log|det d fn / dx| for one sample (float64, autograd)."""
    J = torch.autograd.functional.jacobian(lambda v: fn(v.reshape(1, *x.shape)).flatten(), x.flatten())
    return torch.linalg.slogdet(J)[1]


def perturbed(module, seed, scale=0.3):
    torch.manual_seed(seed)
    module = module.double()
    with torch.no_grad():
        for p in module.parameters():
            p.add_(scale * torch.randn_like(p))
    return module.eval()


def test_whole_flow_is_the_sum_of_its_parts():
    """Multi-scale RealNVP then max-pool: log p(x) = log N(z; 0, I) + log p(z' | z) (brute force)
    + log|det dz'/dx| (autograd Jacobian + slogdet)."""
    shape = (1, 4, 4)
    bij = perturbed(realnvp_image(shape, n_scales=2, n_couplings=1, hidden=8), 0, scale=0.05)
    step = random_step(shape, 4, seed=2)
    flow = CompressiveFlow([bij, step], shape).eval()
    assert flow.latent_dim == 4
    torch.manual_seed(1)
    x = 0.05 + 0.9 * torch.rand(3, *shape, dtype=f64)
    got = flow.log_prob(x).detach()
    for b in range(3):
        zp = bij(x[b:b + 1])[0].reshape(1, *shape).detach()
        z, lpz = brute_force_log_p_x_given_z(step, zp)
        base = Normal(torch.zeros((), dtype=f64), 1.0).log_prob(z).sum()
        ld = jac_logdet(lambda v: bij(v)[0], x[b])
        ref = float(base + lpz[0].detach() + ld)
        assert abs(float(got[b]) - ref) < 1e-10 * max(1.0, abs(ref))


def test_between_scales_and_two_pools():
    """Coupling, max-pool, coupling, max-pool on images: again the sum of the parts."""
    shape = (2, 4, 4)
    c1 = perturbed(AffineCoupling(2, "checkerboard", 0, "tanh", 8), 3)
    p1 = random_step(shape, 3, seed=4)
    c2 = perturbed(AffineCoupling(2, "channel", 1, "tanh", 8), 5)
    p2 = random_step((2, 2, 2), 0, seed=6)
    flow = CompressiveFlow([c1, p1, c2, p2], shape).eval()
    assert flow.latent_shape == (2, 1, 1)
    torch.manual_seed(2)
    x = torch.randn(2, *shape, dtype=f64)
    got = flow.log_prob(x).detach()
    for b in range(2):
        h1 = c1(x[b:b + 1])[0].detach()
        z1, l1 = brute_force_log_p_x_given_z(p1, h1)
        h2 = c2(z1)[0].detach()
        z2, l2 = brute_force_log_p_x_given_z(p2, h2)
        ref = (Normal(torch.zeros((), dtype=f64), 1.0).log_prob(z2).sum() + l1[0] + l2[0]
               + jac_logdet(lambda v: c1(v)[0], x[b]) + jac_logdet(lambda v: c2(v)[0], z1[0]))
        assert abs(float(got[b]) - float(ref.detach())) < 1e-10 * max(1.0, abs(float(ref)))
    # decoding with noise goes back to the same latent exactly (couplings are exact inverses up to rounding)
    torch.manual_seed(3)
    zz = torch.randn(5, 2, dtype=f64)
    xs = flow.decode(zz, noise=True)
    assert torch.allclose(flow(xs)[0], zz, atol=1e-10)
    assert flow.decode(zz).shape == (5, *shape)


def test_build_compressive_fractions():
    m = build_compressive("maxpool", (1, 8, 8), 0.25, hidden=4, depth=1)
    assert m.latent_dim == 16
    m2 = build_compressive("maxpool", (1, 8, 8), 0.06, hidden=4, depth=1)
    assert m2.latent_dim == 4 and sum(isinstance(layer, MaxPoolStep) for layer in m2.layers) == 2
    assert m.layers[1].net is not None
    assert build_compressive("maxpool", (1, 8, 8), 0.25, hidden=4, depth=1, pool_hidden=0).layers[1].net is None
    assert maxpool_count(0.0625) == 2 and maxpool_count(0.25) == 1
    for bad in (0.5, 0.12, 0.3):
        with pytest.raises(ValueError, match="25% of the dimensions per application"):
            build_compressive("maxpool", (1, 8, 8), bad)
    with pytest.raises(ValueError, match="even"):
        build_compressive("maxpool", (1, 6, 6), 0.06)  # 6x6 -> 3x3 cannot be pooled again


def test_rare_rounding_ties_take_the_first_position():
    # a trained float32 flow can round two values of a block to the same maximum (it happened
    # on 28x28 Fashion-MNIST); one tie in 200 blocks is evaluated, not refused
    step = random_step((2, 10, 10), hidden=6, seed=3)
    x = torch.randn(4, 2, 10, 10, dtype=f64)
    blk = x[2, 1, 4:6, 6:8]
    blk[1, 0] = blk[0, 1] = blk.max() + 0.5               # positions 1 and 2 of one block tied
    z, c = step(x)
    z_ref, c_ref = brute_force_log_p_x_given_z(step, x)    # Python max(): the first maximal position
    assert torch.equal(z, z_ref)
    assert torch.allclose(c, c_ref, rtol=1e-12, atol=1e-10)
    # ... which is the limit from the side where the first tied position is the strict maximum
    x_eps = x.clone()
    x_eps[2, 1, 5, 6] -= 1e-9
    assert abs(float(step(x_eps)[1][2] - c[2])) < 1e-6
    assert torch.allclose(step(x_eps)[1][[0, 1, 3]], c[[0, 1, 3]], rtol=0, atol=0)
    # the gradient flows to the chosen maximum and to the tied value through its offset 0
    xg = x.clone().requires_grad_()
    step(xg)[1].sum().backward()
    assert torch.isfinite(xg.grad).all()


def test_discrete_input_is_refused():
    step = MaxPoolStep((1, 8, 8))
    x = torch.randint(0, 4, (16, 1, 8, 8)).double()         # quantized pixels tie in most blocks
    with pytest.raises(ValueError, match="tied maximum.*discrete input"):
        step(x)


def test_bad_input():
    with pytest.raises(ValueError, match="even"):
        MaxPoolStep((1, 5, 4))
    with pytest.raises(ValueError, match=r"\(C, H, W\)"):
        MaxPoolStep(16)
    with pytest.raises(ValueError, match="hidden"):
        MaxPoolStep((1, 4, 4), hidden=-1)
    st = MaxPoolStep((1, 4, 4))
    with pytest.raises(ValueError, match=r"\(B, 1, 4, 4\) or \(B, 16\)"):
        st(torch.zeros(2, 1, 4, 6))
    with pytest.raises(ValueError, match="NaN"):
        st(torch.full((2, 16), float("nan")))
    x = torch.randn(2, 1, 4, 4)
    x[1, 0, 2, 3] = x[1, 0, 2, 2] = x[1, 0, 2:4, 2:4].max() + 1  # a tied maximum in one block
    with pytest.raises(ValueError, match="tied maximum"):
        st(x)
    with pytest.raises(TypeError, match="floating"):
        st(torch.zeros(2, 1, 4, 4, dtype=torch.long))
    with pytest.raises(ValueError, match=r"latent z must have shape \(B, 1, 2, 2\)"):
        st.decode(torch.zeros(2, 1, 3, 3))


def test_cli_maxpool(tmp_path, capsys):
    import json
    import os

    out = str(tmp_path / "mp")
    # refused before any training, in one line
    assert main(["flows", "train", "--data", "digits", "--compress", "maxpool", "--latent-fraction", "0.06", "0.5",
                 "--out", out]) == 1
    assert "latent fraction 0.5 is not reachable; use 0.25" in capsys.readouterr().err
    assert not os.path.exists(out)
    main(["flows", "train", "--data", "digits", "--compress", "maxpool", "--latent-fraction", "0.06",
          "--epochs", "1", "--hidden", "8", "--depth", "1", "--limit", "120", "--out", out])
    m = json.load(open(os.path.join(out, "metrics.json")))
    assert m["latent_dim"] == 4 and m["exact"] and not m["config"]["dual_base"]
    assert 0 < m["test_bpd"] < 10 and os.path.exists(os.path.join(out, "samples.png"))
