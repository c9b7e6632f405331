"""Triton kernels vs their PyTorch references (interpreter on CPU, the GPU when present):
outputs and all gradients, both mask parities, all scale maps, odd shapes; squeezes
bit-exact and round-tripping; uninitialized outputs fully written (NaN-poisoned)."""
import itertools

import pytest
import torch

triton = pytest.importorskip("triton", reason="triton is not installed (pip install fastprob[gpu])")

from fastprob.kernels.triton import coupling as tc  # noqa: E402
from fastprob.kernels.triton import squeeze as tq  # noqa: E402
from fastprob.reference import coupling as rc  # noqa: E402
from fastprob.reference import squeeze as rq  # noqa: E402

DEV = "cuda" if torch.cuda.is_available() else "cpu"
SHAPES = [(2, 3, 8, 8), (3, 5, 6, 10), (1, 4, 2, 2), (1, 2, 4, 6)]
TOL = {torch.float32: dict(rtol=2e-5, atol=2e-5), torch.float64: dict(rtol=1e-10, atol=1e-10)}


pytestmark = pytest.mark.usefixtures("poison_empty")  # unwritten outputs show up as NaN


def _inputs(shape, mask, parity, dtype, seed=0):
    g = torch.Generator().manual_seed(seed)
    B, C, H, W = shape
    x = torch.randn(shape, generator=g, dtype=dtype)
    if mask == "checkerboard":
        sshape = shape
    else:
        sshape = (B, C - C // 2, H, W)
    s = 0.7 * torch.randn(sshape, generator=g, dtype=dtype)
    t = torch.randn(sshape, generator=g, dtype=dtype)
    a = 0.5 + torch.rand(sshape[1], generator=g, dtype=dtype)
    return [v.to(DEV).requires_grad_() for v in (x, s, t, a)]


CASES = list(itertools.product(SHAPES, ["checkerboard", "channel"], [0, 1],
                               ["exp", "tanh", "bounded", "sigmoid"], [False, True]))


@pytest.mark.parametrize("shape,mask,parity,scale,inverse", CASES)
def test_coupling_matches_reference(shape, mask, parity, scale, inverse):
    dtype = torch.float32
    x, s, t, a = _inputs(shape, mask, parity, dtype)
    outs = []
    for f in (rc.coupling, tc.coupling_triton):
        y, ld = f(x, s, t, mask, parity, scale, a=a if scale == "tanh" else None, inverse=inverse)
        gy = torch.linspace(-1, 1, y.numel(), dtype=dtype, device=DEV).view_as(y)
        gl = torch.linspace(0.5, 1.5, ld.numel(), dtype=dtype, device=DEV)
        grads = torch.autograd.grad((y * gy).sum() + (ld * gl).sum(),
                                    [x, s, t] + ([a] if scale == "tanh" else []))
        outs.append((y.detach(), ld.detach(), grads))
    (y0, l0, g0), (y1, l1, g1) = outs
    torch.testing.assert_close(y1, y0, **TOL[dtype])
    torch.testing.assert_close(l1, l0, **TOL[dtype])
    for name, u, v in zip("xsta", g1, g0):
        assert torch.isfinite(u).all(), f"d{name} has unwritten (NaN) entries"
        torch.testing.assert_close(u, v, **TOL[dtype], msg=f"gradient of {name}")


@pytest.mark.parametrize("mask", ["checkerboard", "channel"])
def test_coupling_float64_and_round_trip(mask):
    x, s, t, a = _inputs((2, 4, 6, 4), mask, 1, torch.float64, seed=3)
    y, ld = tc.coupling_triton(x, s, t, mask, 1, "bounded")
    xb, ldb = tc.coupling_triton(y, s, t, mask, 1, "bounded", inverse=True)
    torch.testing.assert_close(xb, x, rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(ldb, -ld, rtol=1e-12, atol=1e-12)
    y0, ld0 = rc.coupling(x, s, t, mask, 1, "bounded")
    torch.testing.assert_close(y, y0, **TOL[torch.float64])


def test_coupling_bad_input():
    x = torch.randn(2, 4, 4, 4, device=DEV)
    s = torch.randn(2, 4, 4, 4, device=DEV)
    with pytest.raises(ValueError, match="channel coupling"):
        tc.coupling_triton(x, s, s, "channel", 0, "exp")
    with pytest.raises(ValueError, match="contiguous"):
        tc.coupling_triton(x.transpose(2, 3), s, s, "checkerboard", 0, "exp")
    with pytest.raises(ValueError, match="scale map"):
        tc.coupling_triton(x, s, s, "checkerboard", 0, "softplus")
    with pytest.raises(ValueError, match="mask"):
        tc.coupling_triton(x, s, s, "diagonal", 0, "exp")
    with pytest.raises(ValueError, match="dtype"):
        tc.coupling_triton(x, s.double(), s, "checkerboard", 0, "exp")


@pytest.mark.parametrize("shape", [(2, 3, 8, 8), (3, 5, 6, 10), (1, 1, 2, 2), (2, 2, 4, 12)])
@pytest.mark.parametrize("order", ["standard", "checkerboard"])
def test_squeeze_bit_exact_and_round_trip(shape, order):
    x = torch.randn(shape, device=DEV)
    z = tq.squeeze_triton(x, order)
    assert torch.equal(z, rq.squeeze(x, order))
    assert torch.equal(tq.unsqueeze_triton(z, order), x)
    z1, z2 = tq.squeeze_split_triton(x, order)
    r1, r2 = rq.squeeze_split(x, order)
    assert torch.equal(z1, r1) and torch.equal(z2, r2)
    assert torch.equal(tq.unsqueeze_merge_triton(z1, z2, order), x)


def test_squeeze_orders_definition():
    x = torch.arange(2 * 4 * 4, dtype=torch.float32).view(1, 2, 4, 4)
    z = rq.squeeze(x, "standard")
    # channel c*4 + 2i + j holds x[c, 2h+i, 2w+j]
    for c, i, j in itertools.product(range(2), range(2), range(2)):
        assert torch.equal(z[0, c * 4 + 2 * i + j], x[0, c, i::2, j::2])
    zc = rq.squeeze(x, "checkerboard")
    for blk, (i, j) in enumerate([(0, 0), (1, 1), (0, 1), (1, 0)]):
        assert torch.equal(zc[0, blk * 2:(blk + 1) * 2], x[0, :, i::2, j::2])
    even = zc[:, :4]  # first 2C channels are the (h + w) even pixels
    assert sorted(even.flatten().tolist()) == sorted(x[0][:, (torch.arange(4)[:, None] + torch.arange(4)) % 2 == 0].flatten().tolist())


@pytest.mark.parametrize("order", ["standard", "checkerboard"])
def test_squeeze_gradients(order):
    x = torch.randn(2, 3, 4, 6, device=DEV, requires_grad=True)
    w = torch.randn(2, 12, 2, 3, device=DEV)
    g_ref, = torch.autograd.grad((rq.squeeze(x, order) * w).sum(), x)
    g_tri, = torch.autograd.grad((tq.squeeze_triton(x, order) * w).sum(), x)
    assert torch.equal(g_ref, g_tri)
    z1, z2 = tq.squeeze_split_triton(x, order)
    g_split, = torch.autograd.grad((z1 * w[:, :6]).sum() + (z2 * w[:, 6:]).sum(), x)
    assert torch.equal(g_split, g_ref)
    # only one half used downstream: the other half's gradient is zero, not garbage
    g_one, = torch.autograd.grad((tq.squeeze_split_triton(x, order)[0] * w[:, :6]).sum(), x)
    g_one_ref, = torch.autograd.grad((rq.squeeze_split(x, order)[0] * w[:, :6]).sum(), x)
    assert torch.equal(g_one, g_one_ref)
    z = torch.randn(2, 12, 2, 3, device=DEV, requires_grad=True)
    xw = torch.randn(2, 3, 4, 6, device=DEV)
    a, = torch.autograd.grad((rq.unsqueeze(z, order) * xw).sum(), z)
    b, = torch.autograd.grad((tq.unsqueeze_triton(z, order) * xw).sum(), z)
    assert torch.equal(a, b)


def test_squeeze_bad_input():
    with pytest.raises(ValueError, match="even"):
        tq.squeeze_triton(torch.randn(1, 2, 5, 4, device=DEV))
    with pytest.raises(ValueError, match="even"):
        rq.squeeze(torch.randn(1, 2, 4, 3))
    with pytest.raises(ValueError, match="divisible by 4"):
        tq.unsqueeze_triton(torch.randn(1, 6, 2, 2, device=DEV))
    with pytest.raises(ValueError, match="order"):
        tq.squeeze_triton(torch.randn(1, 2, 4, 4, device=DEV), "zigzag")
    with pytest.raises(ValueError, match="contiguous"):
        tq.squeeze_triton(torch.randn(1, 2, 4, 4, device=DEV).transpose(2, 3))
