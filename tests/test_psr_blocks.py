"""Conditional flow blocks: logdet == slogdet of the autograd Jacobian (float64) for random
contexts, exact inverses, and the conditional 1x1 convolution invertible for extreme contexts."""
import pytest
import torch
from torch.autograd.functional import jacobian

from fastprob.flows import ops
from fastprob.flows.conditional import (ConditionalActNorm, ConditionalCoupling, ConditionalInvConv1x1,
                                        ConditionalVectorCoupling)


def _randomize(m, scale=0.4, seed=0):
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in m.parameters():
            p.add_(scale * torch.randn(p.shape, generator=g, dtype=p.dtype))
    return m.double().eval()


def _check(block, shape, context, seed=0):
    torch.manual_seed(seed)
    x = torch.randn(1, *shape, dtype=torch.float64)
    z, ld = block(x, context)
    xb, ldb = block.inverse(z, context)
    torch.testing.assert_close(xb, x, rtol=1e-9, atol=1e-9)
    torch.testing.assert_close(ldb, -ld, rtol=1e-9, atol=1e-9)
    J = jacobian(lambda v: block(v.view(1, *shape), context)[0].reshape(-1), x.reshape(-1))
    sign, logabs = torch.linalg.slogdet(J)
    assert sign != 0
    torch.testing.assert_close(ld[0], logabs, rtol=1e-8, atol=1e-8)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_conditional_actnorm_image_and_vector(seed):
    blk = _randomize(ConditionalActNorm(3, 2), seed=seed)
    blk.base.initialized.fill_(True)
    _check(blk, (3, 4, 5), 2 * torch.randn(1, 2, 4, 5, dtype=torch.float64), seed)
    v = _randomize(ConditionalActNorm(4, 3), seed=seed)
    v.base.initialized.fill_(True)
    _check(v, (4,), torch.randn(1, 3, dtype=torch.float64), seed)


@pytest.mark.parametrize("C", [1, 2, 3, 5])
def test_conditional_conv_jacobian(C):
    blk = _randomize(ConditionalInvConv1x1(C, 3, seed=C), seed=C)
    _check(blk, (C, 3, 2), torch.randn(1, 3, 3, 2, dtype=torch.float64), C)
    vec = _randomize(ConditionalInvConv1x1(C, 2, seed=C), seed=C + 7)
    _check(vec, (C,), torch.randn(1, 2, dtype=torch.float64), C)


def test_conditional_conv_starts_as_a_rotation():
    blk = ConditionalInvConv1x1(4, 2, seed=3).double()
    W = blk.weight(torch.randn(2, 2, dtype=torch.float64))
    torch.testing.assert_close(W[0] @ W[0].T, torch.eye(4, dtype=torch.float64), atol=1e-6, rtol=0)


def test_conditional_conv_invertible_for_extreme_contexts():
    blk = _randomize(ConditionalInvConv1x1(6, 4, seed=0), scale=1.0)
    ctx = torch.tensor([[1e6, -1e6, 1e6, -1e6], [-1e30, 1e30, 0, 5], [0, 0, 0, 0], [1e3, 1e3, 1e3, 1e3]],
                       dtype=torch.float64)
    W = blk.weight(ctx)
    assert torch.isfinite(W).all()
    # independent check: the smallest singular value is bounded away from 0
    assert torch.linalg.svdvals(W).min() > 1e-6
    x = torch.randn(4, 6, 3, 3, dtype=torch.float64)
    z, ld = blk(x, ctx[:, :, None, None].expand(4, 4, 3, 3))
    xb, _ = blk.inverse(z, ctx[:, :, None, None].expand(4, 4, 3, 3))
    torch.testing.assert_close(xb, x, rtol=1e-8, atol=1e-8)
    torch.testing.assert_close(ld, 9 * torch.linalg.slogdet(W)[1], rtol=1e-9, atol=1e-9)
    # the sign of det W(v) is that of the fixed signed permutation: the same for every context
    d = torch.linalg.det(W)
    assert (torch.sign(d) == torch.sign(torch.linalg.det(blk.P @ blk.S))).all()


@pytest.mark.parametrize("mask,parity", [("checkerboard", 0), ("checkerboard", 1), ("channel", 0), ("channel", 1)])
def test_conditional_coupling(mask, parity):
    blk = _randomize(ConditionalCoupling(2, 3, mask, parity, hidden=8), seed=parity)
    _check(blk, (2, 4, 4), torch.randn(1, 3, 4, 4, dtype=torch.float64))


def test_conditional_coupling_uses_bounded_scale_through_fused_op(monkeypatch):
    """The coupling must call the fused op with the bounded map: with a huge network output the
    per-element log-scale stays within [-2, 2]."""
    calls = []
    real = ops.coupling

    def spy(*args, **kw):
        calls.append(args[5])
        return real(*args, **kw)

    monkeypatch.setattr(ops, "coupling", spy)
    blk = ConditionalCoupling(1, 1, "checkerboard", 0, hidden=4).double()
    with torch.no_grad():
        blk.net.net[-1].bias.fill_(1e3)
    x = torch.randn(2, 1, 4, 4, dtype=torch.float64)
    _, ld = blk(x, torch.zeros(2, 1, 4, 4, dtype=torch.float64))
    assert calls == ["bounded"]
    torch.testing.assert_close(ld, torch.full((2,), 2.0 * 8, dtype=torch.float64))


def test_conditional_vector_coupling():
    blk = _randomize(ConditionalVectorCoupling(3, 2, parity=1, hidden=8))
    _check(blk, (3,), torch.randn(1, 2, dtype=torch.float64))


def test_context_errors():
    blk = ConditionalInvConv1x1(3, 2, seed=0)
    with pytest.raises(ValueError, match="context"):
        blk(torch.randn(2, 3, 4, 4))
    with pytest.raises(ValueError, match="2 channels"):
        blk(torch.randn(2, 3, 4, 4), torch.randn(2, 5, 4, 4))
    an = ConditionalActNorm(3, 2)
    with pytest.raises(ValueError, match="context of shape"):
        an(torch.randn(2, 3, 4, 4), torch.randn(2, 2, 2, 2))
    with pytest.raises(ValueError, match="context_channels"):
        ConditionalCoupling(2, 0)
