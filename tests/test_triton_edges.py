"""Triton coupling / squeeze edge cases against the PyTorch references (interpreter on CPU):
a scalar or strided tanh scale ``a``, samples spanning several programs (> 1,024 elements,
so the log-determinant is a sum of per-program partials), results that do not depend on
the order in which programs run, and 64-bit sample offsets (checked on the kernels' own
index helpers with a tiny probe kernel, since 2**31 elements cannot be allocated here)."""
import pytest
import torch

triton = pytest.importorskip("triton", reason="triton is not installed (pip install fastprob[gpu])")
import triton.language as tl  # noqa: E402

from fastprob.kernels.triton import coupling as tc  # noqa: E402
from fastprob.kernels.triton import squeeze as tq  # noqa: E402
from fastprob.reference import coupling as rc  # noqa: E402
from fastprob.reference import squeeze as rq  # noqa: E402

DEV = "cuda" if torch.cuda.is_available() else "cpu"
INTERPRETED = DEV == "cpu"
TOL = dict(rtol=2e-5, atol=2e-5)
BIG = (2, 3, 20, 24)  # 1,440 elements per sample: two programs of 1,024


@pytest.fixture(autouse=True)
def _nan_empty(monkeypatch):
    """Uninitialized outputs are NaN, so any element a kernel forgets to write shows up."""
    real_empty, real_like = torch.empty, torch.empty_like

    def nan_fill(out):
        return out.fill_(float("nan")) if out.is_floating_point() else out

    monkeypatch.setattr(torch, "empty", lambda *a, **k: nan_fill(real_empty(*a, **k)))
    monkeypatch.setattr(torch, "empty_like", lambda *a, **k: nan_fill(real_like(*a, **k)))


def _data(shape, mask, seed=0):
    g = torch.Generator().manual_seed(seed)
    B, C, H, W = shape
    sshape = shape if mask == "checkerboard" else (B, C - C // 2, H, W)
    x = torch.randn(shape, generator=g)
    s = 0.7 * torch.randn(sshape, generator=g)
    t = torch.randn(sshape, generator=g)
    return [v.to(DEV).requires_grad_() for v in (x, s, t)]


def _run(f, x, s, t, mask, parity, scale, a, inverse, wrt):
    """Outputs and the gradients of a fixed random-weighted scalar of (y, logdet)."""
    y, ld = f(x, s, t, mask, parity, scale, a=a, inverse=inverse)
    g = torch.Generator().manual_seed(7)
    wy = torch.randn(y.shape, generator=g).to(DEV)
    wl = torch.randn(ld.shape, generator=g).to(DEV)
    grads = torch.autograd.grad((y * wy).sum() + (ld * wl).sum(), wrt)
    return y.detach(), ld.detach(), grads


def _assert_same(ref, got):
    for u, v in zip(ref[:2], got[:2]):
        torch.testing.assert_close(v, u, **TOL)
    for i, (u, v) in enumerate(zip(ref[2], got[2])):
        assert torch.isfinite(v).all(), f"gradient {i} has unwritten (NaN) entries"
        torch.testing.assert_close(v, u, **TOL, msg=f"gradient {i}")


@pytest.mark.parametrize("mask,inverse", [("checkerboard", False), ("channel", True)])
def test_strided_tanh_scale(mask, inverse):
    x, s, t = _data(BIG, mask)
    n = s.shape[1]
    base = (0.5 + torch.rand(2 * n, generator=torch.Generator().manual_seed(1))).to(DEV).requires_grad_()
    a = base[::2]  # a strided view: the kernel must read a[c], not base[c]
    assert not a.is_contiguous()
    ref = _run(rc.coupling, x, s, t, mask, 1, "tanh", a, inverse, [x, s, t, base])
    got = _run(tc.coupling_triton, x, s, t, mask, 1, "tanh", a, inverse, [x, s, t, base])
    _assert_same(ref, got)


@pytest.mark.parametrize("mask", ["checkerboard", "channel"])
def test_scalar_tanh_scale_gets_its_gradient(mask):
    x, s, t = _data((2, 4, 6, 6), mask, seed=2)
    a = torch.tensor(0.8, device=DEV, requires_grad=True)
    ref = _run(rc.coupling, x, s, t, mask, 0, "tanh", a, False, [x, s, t, a])
    got = _run(tc.coupling_triton, x, s, t, mask, 0, "tanh", a, False, [x, s, t, a])
    assert ref[2][3].abs() > 0  # the oracle's gradient is not trivially zero
    _assert_same(ref, got)


@pytest.mark.parametrize("mask,parity,scale,inverse", [
    ("checkerboard", 0, "exp", False), ("checkerboard", 1, "tanh", True),
    ("channel", 0, "sigmoid", False), ("channel", 1, "bounded", True), ("channel", 0, "tanh", False)])
def test_several_programs_per_sample(mask, parity, scale, inverse):
    shape = (2, 5, 30, 22) if mask == "channel" else BIG  # 3,300 / 1,440 elements per sample
    x, s, t = _data(shape, mask, seed=3)
    a = (0.5 + torch.rand(s.shape[1], generator=torch.Generator().manual_seed(4))).to(DEV).requires_grad_()
    wrt = [x, s, t] + ([a] if scale == "tanh" else [])
    aa = a if scale == "tanh" else None
    ref = _run(rc.coupling, x, s, t, mask, parity, scale, aa, inverse, wrt)
    got = _run(tc.coupling_triton, x, s, t, mask, parity, scale, aa, inverse, wrt)
    _assert_same(ref, got)


@pytest.fixture
def reversed_program_order(monkeypatch):
    """Make the interpreter run the programs of every launch in reverse order."""
    if not INTERPRETED:
        pytest.skip("the program order can only be controlled in the interpreter")
    from triton.runtime import interpreter

    builder = interpreter.interpreter_builder
    real = builder.set_grid_idx

    def set_grid_idx(x, y, z):
        nx, ny, nz = builder.grid_dim
        real(nx - 1 - x, ny - 1 - y, nz - 1 - z)

    monkeypatch.setattr(builder, "set_grid_idx", set_grid_idx)
    return monkeypatch


@pytest.mark.parametrize("scale", ["exp", "tanh"])
def test_results_do_not_depend_on_program_order(reversed_program_order, scale):
    # float additions in a different order round differently: an atomic accumulation of
    # the per-program partial log-determinants (or of the tanh-scale gradient) changes
    # with the order in which programs finish; a fixed-order reduction does not
    x, s, t = _data((4, 3, 40, 40), "checkerboard", seed=2)  # five programs per sample
    a = (0.5 + torch.rand(3, generator=torch.Generator().manual_seed(6))).to(DEV).requires_grad_()
    wrt = [x, s, t] + ([a] if scale == "tanh" else [])
    aa = a if scale == "tanh" else None
    backwards = _run(tc.coupling_triton, x, s, t, "checkerboard", 0, scale, aa, False, wrt)
    reversed_program_order.undo()
    forwards = _run(tc.coupling_triton, x, s, t, "checkerboard", 0, scale, aa, False, wrt)
    assert torch.equal(backwards[1], forwards[1]), (backwards[1] - forwards[1]).abs().max()
    for u, v in zip(backwards[2], forwards[2]):
        assert torch.equal(u, v), (u - v).abs().max()


@pytest.mark.skipif(not INTERPRETED, reason="repeat-run check below covers the GPU")
def test_coupling_repeatable():
    x, s, t = _data(BIG, "channel", seed=8)
    with torch.no_grad():
        runs = [tc.coupling_triton(x, s, t, "channel", 0, "exp")[1] for _ in range(3)]
    assert all(torch.equal(r, runs[0]) for r in runs)


@triton.jit
def _coupling_index_probe(out_ptr, N_PER, HW, W, CT0, CT, MASK: tl.constexpr, BLOCK: tl.constexpr):
    b, offs = tc._sample_offsets(BLOCK)
    trans, sidx, cs = tc._index(offs, b, N_PER, HW, W, CT0, CT, 0, MASK)
    row = out_ptr + (tl.program_id(0) * 2) * BLOCK
    tl.store(row + tl.arange(0, BLOCK), b * N_PER + offs)  # the x / y / dx index of _load and the kernels
    tl.store(row + BLOCK + tl.arange(0, BLOCK), sidx)


@pytest.mark.parametrize("mask_id", [0, 1])
def test_coupling_offsets_are_64_bit(mask_id):
    # sample 2 of a batch with 2**30 + 2**20 elements per sample starts past 2**31
    HW, W, C = 2**20, 2**10, 2**10 + 1
    n_per, ct0, ct = C * HW, 1, C // 2
    block = 16
    out = torch.zeros(3, 2, block, dtype=torch.int64, device=DEV)
    _coupling_index_probe[(3, 1)](out, n_per, HW, W, ct0, ct, MASK=mask_id, BLOCK=block)
    offs = torch.arange(block, dtype=torch.int64)
    for b in range(3):
        expect_x = b * n_per + offs
        expect_s = expect_x if mask_id == 0 else b * (ct * HW) + offs - ct0 * HW
        assert torch.equal(out[b, 0].cpu(), expect_x), (b, out[b, 0, 0].item(), expect_x[0].item())
        assert torch.equal(out[b, 1].cpu(), expect_s), (b, out[b, 1, 0].item(), expect_s[0].item())


@triton.jit
def _squeeze_index_probe(out_ptr, C, H, W, SPLIT, BLOCK: tl.constexpr):
    inb, src, first, i1, i2 = tq._squeeze_index(C, H, W, SPLIT, 0, BLOCK)
    row = out_ptr + (tl.program_id(0) * 3) * BLOCK
    tl.store(row + tl.arange(0, BLOCK), src)
    tl.store(row + BLOCK + tl.arange(0, BLOCK), i1)
    tl.store(row + 2 * BLOCK + tl.arange(0, BLOCK), i2)


def test_squeeze_offsets_are_64_bit():
    C, H, W = 257, 2**11, 2**11  # 2**30 + 2**22 elements per image
    split = 2 * C
    block = 8
    out = torch.zeros(3, 3, block, dtype=torch.int64, device=DEV)
    _squeeze_index_probe[(3, 1)](out, C, H, W, split, BLOCK=block)
    plane = (H // 2) * (W // 2)
    for b in range(3):
        offs = torch.arange(block, dtype=torch.int64)
        # standard order: output channel 0 = x[c=0, 2h, 2w]; offsets 0..7 are w = 0..7
        expect_src = b * C * H * W + 2 * offs
        assert torch.equal(out[b, 0].cpu(), expect_src), (b, out[b, 0, 0].item())
        assert torch.equal(out[b, 1].cpu(), b * split * plane + offs)
        assert torch.equal(out[b, 2].cpu(), b * (4 * C - split) * plane + offs - split * plane)


@pytest.mark.parametrize("order", ["standard", "checkerboard"])
def test_squeeze_several_programs_per_image(order):
    x = torch.randn(2, 3, 24, 20, device=DEV, requires_grad=True)  # 1,440 elements per image
    assert torch.equal(tq.squeeze_triton(x, order), rq.squeeze(x, order))
    z1, z2 = tq.squeeze_split_triton(x, order)
    r1, r2 = rq.squeeze_split(x, order)
    assert torch.equal(z1, r1) and torch.equal(z2, r2)
    assert torch.equal(tq.unsqueeze_merge_triton(z1, z2, order), x)
    w = torch.randn(2, 6, 12, 10, device=DEV)
    g, = torch.autograd.grad((z1 * w).sum(), x)
    g_ref, = torch.autograd.grad((r1 * w).sum(), x)
    assert torch.equal(g, g_ref)


def test_oversized_sample_is_a_clear_error():
    # shape only: the check happens before any memory is touched
    x = torch.empty(1, 1, 1, 65535 * 1024 + 1, device="meta")
    with pytest.raises(ValueError, match="per sample"):
        tc._check_sizes(x)
