"""Bad input to flows and boosted flows: a clear error about the data (or a correct empty
result), never a deep torch error or a message that blames the model."""
import numpy as np
import pytest
import torch

from fastprob.flows import (ActNorm, AffineCoupling, InvConv1x1, VectorCoupling, glow, glow_vector, ops,
                            realnvp_image, realnvp_vector)
from fastprob.models import BoostedFlow


def _image_flows():
    torch.manual_seed(0)
    return [realnvp_image((1, 4, 4), n_scales=2, n_couplings=1, hidden=4),
            glow((1, 4, 4), n_levels=2, depth=1, hidden=4)]


@pytest.mark.parametrize("bad", [float("nan"), float("inf")])
def test_actnorm_init_rejects_non_finite_batch(bad):
    a = ActNorm(3)
    a.train()
    x = torch.randn(8, 3, 2, 2)
    x[2, 1, 0, 1] = bad
    with pytest.raises(ValueError, match="initialization.*NaN or inf"):
        a(x)
    assert not bool(a.initialized)
    assert torch.equal(a.bias, torch.zeros(3)) and torch.equal(a.log_scale, torch.zeros(3))
    # a clean batch afterwards still initializes the layer properly
    clean = torch.randn(64, 3, 2, 2) * 2 + 5
    z, ld = a(clean)
    assert bool(a.initialized) and torch.isfinite(z).all() and torch.isfinite(ld).all()
    torch.testing.assert_close(z.mean((0, 2, 3)), torch.zeros(3), atol=1e-5, rtol=0)


@pytest.mark.parametrize("bad", [float("nan"), float("inf"), -float("inf")])
def test_non_finite_images_blame_the_data(bad):
    for f in _image_flows():
        x = torch.rand(4, 1, 4, 4) * 0.8 + 0.1
        x[1, 0, 2, 2] = bad
        with pytest.raises(ValueError, match="input data contain 1 NaN or inf") as info:
            f.log_prob(x)
        assert "learning rate" not in str(info.value)
    # a coupling used on its own names its input, not its network
    blk = AffineCoupling(2, "checkerboard", hidden=4)
    x = torch.randn(1, 2, 4, 4)
    x[0, 0, 0, 0] = bad  # a conditioning position (parity 0 transforms (h + w) odd)
    with pytest.raises(ValueError, match="input to this coupling"):
        blk(x)


def test_integer_and_0_255_images_are_rejected_with_a_hint():
    pix = torch.randint(0, 256, (4, 1, 4, 4))
    for f in _image_flows():
        with pytest.raises(TypeError, match="dequantized"):
            f.log_prob(pix)
        with pytest.raises(ValueError, match=r"Logit expects data in \[0, 1\].*UniformDequantizer"):
            f.log_prob(pix.float())


@pytest.mark.parametrize("make", [
    lambda: AffineCoupling(2, "checkerboard", scale_map="exp", hidden=4),
    lambda: AffineCoupling(4, "channel", scale_map="exp", hidden=4),
    lambda: VectorCoupling(4, 0, scale_map="exp", hidden=4)])
@pytest.mark.parametrize("inverse", [False, True])
def test_exp_scale_overflow_raises(make, inverse):
    blk = make()
    last = blk.net.net[-1]
    with torch.no_grad():  # s = +-100: exp(s) overflows float32 while sum(s) stays finite
        last.bias[: blk.c_t].fill_(-100.0 if inverse else 100.0)
    x = torch.randn(2, 4) if isinstance(blk, VectorCoupling) else torch.randn(2, blk.channels, 4, 4)
    x = x + 3.0  # keep x away from 0 so that x * exp(s) is inf, not 0 * inf
    with pytest.raises(FloatingPointError, match="overflowed.*'exp'"):
        blk.inverse(x) if inverse else blk(x)
    # without the check the output is inf while the log-determinant is finite: what the check prevents
    blk.check_finite = False
    y, ld = blk.inverse(x) if inverse else blk(x)
    assert not torch.isfinite(y).all() and torch.isfinite(ld).all()


@pytest.mark.parametrize("build", [
    lambda: realnvp_image((1, 4, 4), n_scales=2, n_couplings=1, hidden=4),
    lambda: glow((1, 4, 4), n_levels=2, depth=1, hidden=4),
    lambda: realnvp_vector(3, n_layers=2, hidden=4),
    lambda: glow_vector(3, depth=2, hidden=4)])
def test_empty_batches_and_zero_samples(build):
    torch.manual_seed(0)
    f = build()
    f.train()
    x0 = torch.rand(0, *f.event_shape)
    lp = f.log_prob(x0)
    assert lp.shape == (0,)
    z, ld = f(x0)
    assert z.shape == (0, f.dim) and ld.shape == (0,)
    # an empty batch carries no statistics: ActNorm stays uninitialized until real data come
    acts = [m for m in f.modules() if isinstance(m, ActNorm)]
    assert acts and not any(bool(m.initialized) for m in acts)
    f.log_prob(torch.rand(16, *f.event_shape) * 0.8 + 0.1)
    assert all(bool(m.initialized) for m in acts)
    s = f.sample(0)
    assert s.shape == (0, *f.event_shape)
    with pytest.raises(ValueError, match="number of samples"):
        f.sample(-1)
    with pytest.raises(ValueError, match="number of samples"):
        f.sample(2.5)


def test_empty_batch_through_the_triton_kernels():
    pytest.importorskip("triton")
    x = torch.rand(0, 2, 4, 4)
    y, ld = ops.coupling(x, x, x, "checkerboard", 0, "tanh", torch.ones(2), backend="triton")
    assert y.shape == (0, 2, 4, 4) and ld.shape == (0,)
    assert ops.squeeze(x, backend="triton").shape == (0, 8, 2, 2)
    assert ops.squeeze(x, backend="torch").shape == (0, 8, 2, 2)
    assert ops.unsqueeze(torch.rand(0, 8, 2, 2), backend="torch").shape == (0, 2, 4, 4)


@pytest.mark.parametrize("make", [
    lambda: realnvp_image((1, 4, 4), n_scales=-1),
    lambda: realnvp_image((1, 4, 4), n_scales=0),
    lambda: realnvp_image((1, 4, 4), n_couplings=0),
    lambda: realnvp_image((0, 4, 4)),
    lambda: realnvp_image((1, 4)),
    lambda: glow((0, 4, 4)),
    lambda: glow((1, 4, 4), depth=0),
    lambda: glow((1, 4, 4), n_levels=-1),
    lambda: realnvp_vector(4, n_layers=0),
    lambda: glow_vector(4, depth=0),
    lambda: AffineCoupling(0),
    lambda: AffineCoupling(-2),
    lambda: AffineCoupling(2.5),
    lambda: AffineCoupling(2, hidden=0),
    lambda: VectorCoupling(-3),
    lambda: ActNorm(0),
    lambda: InvConv1x1(-1)])
def test_bad_sizes_are_clear_errors(make):
    with pytest.raises(ValueError, match=r"must be a positive integer|event shape \(C, H, W\)"):
        make()


def _make(c):
    torch.manual_seed(c)
    return realnvp_vector(2, n_layers=2, hidden=8)


@pytest.fixture(scope="module")
def boosted():
    g = torch.Generator().manual_seed(0)
    x = torch.randn(200, 2, generator=g, dtype=torch.float64)
    return BoostedFlow(_make, 2).fit(x[:150], x[150:], epochs=1, batch_size=50, progress=False)


def test_boosted_flow_accepts_the_dtypes_fit_accepts(boosted):
    x64 = torch.randn(6, 2, dtype=torch.float64)
    lp64 = boosted.log_prob(x64)
    lp32 = boosted.log_prob(x64.float())
    lpnp = boosted.log_prob(x64.numpy())
    assert torch.isfinite(lp64).all()
    torch.testing.assert_close(lp64, lp32)
    torch.testing.assert_close(lpnp, lp32)
    # and the other way round: fit on float32, evaluate float64
    b = BoostedFlow(_make, 1).fit(torch.randn(60, 2), torch.randn(20, 2), epochs=1, progress=False)
    torch.testing.assert_close(b.log_prob(x64), b.log_prob(x64.float()))


def test_boosted_flow_empty_inputs(boosted):
    with pytest.raises(ValueError, match="training data x must be a non-empty"):
        BoostedFlow(_make, 1).fit(torch.zeros(0, 2), torch.randn(5, 2), progress=False)
    with pytest.raises(ValueError, match="validation data x_val must be a non-empty"):
        BoostedFlow(_make, 1).fit(torch.randn(5, 2), np.zeros((0, 2)), progress=False)
    assert boosted.log_prob(torch.zeros(0, 2)).shape == (0,)
    assert boosted.sample(0).shape == (0, 2)
    with pytest.raises(ValueError, match=">= 0"):
        boosted.sample(-3)


def _normflows_style_log_prob(layers, x):
    """What normflows' NormalizingFlow.forward_kld does with its layers: it calls each layer's
    ``inverse`` on data (normflows layers map latent -> data in ``forward``)."""
    z, log_q = x, torch.zeros(x.shape[0])
    for layer in reversed(layers):
        z, ld = layer.inverse(z)
        log_q = log_q + ld
    return log_q + torch.distributions.Normal(0.0, 1.0).log_prob(z).sum(1)


def test_actnorm_trained_through_its_inverse_before_init_raises():
    from fastprob.models.gbnf import freeze_init

    torch.manual_seed(0)
    x = torch.randn(32, 3) * 3 + 1
    f = glow_vector(3, depth=2, hidden=4)
    f.train()
    with pytest.raises(RuntimeError, match="before its data-dependent initialization.*normflows"):
        _normflows_style_log_prob(list(f.transforms), x).mean().backward()
    acts = [m for m in f.modules() if isinstance(m, ActNorm)]
    assert not any(bool(m.initialized) for m in acts)
    # sampling (no gradients) from a fresh flow is still allowed
    assert f.sample(4).shape == (4, 3)
    # after a forward pass on data (the init), training through the inverse is fine
    f(x)
    assert all(bool(m.initialized) for m in acts)
    assert torch.isfinite(_normflows_style_log_prob(list(f.transforms), x)).all()
    # reverse-KL style training marks the layers initialized explicitly
    g = freeze_init(glow_vector(3, depth=2, hidden=4))
    zs, _ = g.inverse(torch.randn(8, 3))
    assert zs.requires_grad
