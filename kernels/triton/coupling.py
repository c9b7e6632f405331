"""Fused affine coupling in Triton: forward/inverse and a one-pass backward.

One program handles BLOCK consecutive elements of one sample.  It reads x, and s, t at
transformed positions only, applies the scale map and the mask, writes every element
of the output (transformed positions get the affine map, the others are copied - no
concatenation), and writes its partial sum of g(s) to a (B, n_programs) buffer that is
summed in a fixed order afterwards (no atomics: the logdet is bit-identical from run to
run).  The backward kernel recomputes exp(g) from (x, s) and writes dx, ds, dt (zeros
where s and t are unused) and, for the tanh scale, each element's contribution to the
gradient of ``a`` (an s-shaped buffer, reduced per channel afterwards, again without
atomics).  Sample offsets are 64-bit, so tensors past 2**31 elements are addressed
correctly.

Reference (same signature): ``fastprob.reference.coupling.coupling``.
Runs on CPU tensors under ``TRITON_INTERPRET=1`` (how the tests check it).
"""
from __future__ import annotations

import torch
import triton
import triton.language as tl

from fastprob.reference.masks import channel_split

_SCALE_IDS = {"exp": 0, "tanh": 1, "bounded": 2, "sigmoid": 3}
BLOCK = 1024


@triton.jit
def _tanh(u):
    # tanh from exp (saturates correctly: exp overflow gives +-1)
    e = tl.exp(-2.0 * tl.abs(u))
    th = (1.0 - e) / (1.0 + e)
    return tl.where(u < 0, -th, th)


@triton.jit
def _scale(s, a, SCALE: tl.constexpr):
    """g(s) and dg/ds."""
    if SCALE == 0:
        g = s
        dg = tl.full(s.shape, 1.0, s.dtype)
    elif SCALE == 1:
        th = _tanh(s)
        g = a * th
        dg = a * (1.0 - th * th)
    elif SCALE == 2:
        th = _tanh(0.5 * s)
        g = 2.0 * th
        dg = 1.0 - th * th
    else:
        v = s + 2.0
        # logsigmoid(v) = min(v, 0) - log(1 + exp(-|v|)); its derivative is sigmoid(-v)
        g = tl.minimum(v, 0.0) - tl.log(1.0 + tl.exp(-tl.abs(v)))
        dg = 1.0 / (1.0 + tl.exp(v))
    return g, dg


@triton.jit
def _index(offs, b, N_PER, HW, W, CT0, CT, PARITY, MASK: tl.constexpr):
    """Whether each element is transformed, its index into s/t, and its s-channel."""
    c = offs // HW
    hw = offs % HW
    if MASK == 0:
        h = hw // W
        w = hw % W
        trans = ((h + w + PARITY) % 2) == 1
        sidx = b * N_PER + offs
        cs = c
    else:
        trans = (c >= CT0) & (c < CT0 + CT)
        sidx = b * (CT * HW) + (offs - CT0 * HW)
        cs = c - CT0
    return trans, sidx, cs


@triton.jit
def _sample_offsets(BLOCK: tl.constexpr):
    """(sample b as int64, offsets of this program's block within the sample).

    b is 64-bit so that b * N_PER cannot overflow once a tensor has 2**31 elements; the
    offsets within one sample stay 32-bit (N_PER < 2**31 is checked on the host)."""
    b = tl.program_id(0).to(tl.int64)
    offs = tl.program_id(1) * BLOCK + tl.arange(0, BLOCK)
    return b, offs


@triton.jit
def _load(x_ptr, s_ptr, t_ptr, a_ptr, N_PER, HW, W, CT0, CT, PARITY, MASK: tl.constexpr, BLOCK: tl.constexpr):
    """This program's block of one sample: x for every element, s, t and a where transformed."""
    b, offs = _sample_offsets(BLOCK)
    inb = offs < N_PER
    x = tl.load(x_ptr + b * N_PER + offs, mask=inb, other=0.0)
    trans, sidx, cs = _index(offs, b, N_PER, HW, W, CT0, CT, PARITY, MASK)
    m = inb & trans
    s = tl.load(s_ptr + sidx, mask=m, other=0.0)
    t = tl.load(t_ptr + sidx, mask=m, other=0.0)
    a = tl.load(a_ptr + cs, mask=m, other=0.0)
    return b, offs, inb, m, sidx, cs, x, s, t, a


@triton.jit
def _coupling_fwd_kernel(x_ptr, s_ptr, t_ptr, a_ptr, y_ptr, ld_ptr, N_PER, HW, W, CT0, CT, PARITY,
                         INVERSE: tl.constexpr, MASK: tl.constexpr, SCALE: tl.constexpr,
                         BLOCK: tl.constexpr):
    b, offs, inb, m, sidx, cs, x, s, t, a = _load(x_ptr, s_ptr, t_ptr, a_ptr, N_PER, HW, W, CT0, CT, PARITY,
                                                   MASK, BLOCK)
    g, dg = _scale(s, a, SCALE)
    g = tl.where(m, g, 0.0)
    if INVERSE:
        y = tl.where(m, (x - t) * tl.exp(-g), x)
        part = -tl.sum(g, axis=0)
    else:
        y = tl.where(m, x * tl.exp(g) + t, x)
        part = tl.sum(g, axis=0)
    tl.store(y_ptr + b * N_PER + offs, y, mask=inb)
    # ld_ptr is a (B, n_programs) buffer of partial sums (no atomics: a fixed-order sum later)
    tl.store(ld_ptr + b * tl.num_programs(1) + tl.program_id(1), part)


@triton.jit
def _coupling_bwd_kernel(x_ptr, s_ptr, t_ptr, a_ptr, dy_ptr, dld_ptr, dx_ptr, ds_ptr, dt_ptr, da_ptr,
                         N_PER, HW, W, CT0, CT, PARITY, INVERSE: tl.constexpr, MASK: tl.constexpr,
                         SCALE: tl.constexpr, BLOCK: tl.constexpr):
    b, offs, inb, m, sidx, cs, x, s, t, a = _load(x_ptr, s_ptr, t_ptr, a_ptr, N_PER, HW, W, CT0, CT, PARITY,
                                                   MASK, BLOCK)
    dy = tl.load(dy_ptr + b * N_PER + offs, mask=inb, other=0.0)
    dld = tl.load(dld_ptr + b)
    g, dg = _scale(s, a, SCALE)
    if INVERSE:
        eg = tl.exp(-g)
        y = (x - t) * eg
        common = -(dy * y + dld)       # d/dg of (dy . y + dld . logdet)
        dx = tl.where(m, dy * eg, dy)
        dt = tl.where(m, -dy * eg, 0.0)
    else:
        eg = tl.exp(g)
        common = dy * x * eg + dld
        dx = tl.where(m, dy * eg, dy)
        dt = tl.where(m, dy, 0.0)
    ds = tl.where(m, common * dg, 0.0)
    tl.store(dx_ptr + b * N_PER + offs, dx, mask=inb)
    # s/t-shaped outputs: every one of their elements maps to exactly one in-bounds element
    if MASK == 0:
        smask = inb
    else:
        smask = m
    tl.store(ds_ptr + sidx, ds, mask=smask)
    tl.store(dt_ptr + sidx, dt, mask=smask)
    if SCALE == 1:
        # da_ptr is s-shaped: each element's term, summed per channel on the host (no atomics)
        th = _tanh(s)
        tl.store(da_ptr + sidx, tl.where(m, common * th, 0.0), mask=smask)


def _geometry(x, s, mask, parity):
    B, C, H, W = x.shape
    if mask == "checkerboard":
        if s.shape != x.shape:
            raise ValueError(f"checkerboard coupling needs s and t shaped like x {tuple(x.shape)}, "
                             f"got {tuple(s.shape)}")
        return 0, 0, C, C
    c0, ct = channel_split(C, parity)
    if s.shape != (B, ct, H, W):
        raise ValueError(f"channel coupling of {C} channels needs s and t of shape {(B, ct, H, W)}, "
                         f"got {tuple(s.shape)}")
    return 1, c0, ct, ct


def _check(*ts):
    dev = ts[0].device
    for t in ts:
        if t.device != dev:
            raise ValueError(f"all tensors must be on one device, got {dev} and {t.device}")
        if not t.is_contiguous():
            raise ValueError("the Triton coupling kernel needs contiguous tensors; call .contiguous()")
        if t.dtype != ts[0].dtype:
            raise ValueError(f"all tensors must share a dtype, got {ts[0].dtype} and {t.dtype}")


def _check_sizes(x):
    """One sample must fit the 32-bit in-sample offsets and the second grid axis (<= 65535 programs)."""
    n_per = x.shape[1] * x.shape[2] * x.shape[3]
    if triton.cdiv(n_per, BLOCK) > 65535:
        raise ValueError(f"one sample has {n_per} elements; the Triton coupling handles at most "
                         f"{65535 * BLOCK} per sample; use backend='torch' or smaller images")


def _a_vec(a, n, like):
    if a is None:
        return torch.ones(n, device=like.device, dtype=like.dtype)
    if not torch.is_tensor(a):
        return torch.full((n,), float(a), device=like.device, dtype=like.dtype)
    if a.dim() == 0:  # expand keeps the autograd link: the scalar's gradient is the channel sum
        return a.to(dtype=like.dtype).expand(n).contiguous()
    if a.shape != (n,):
        raise ValueError(f"the tanh scale must be a scalar or have shape ({n},), got {tuple(a.shape)}")
    # the kernel reads a with unit stride; .to/.contiguous are differentiable, so a learned
    # (even strided) a still receives its gradient
    return a.to(dtype=like.dtype).contiguous()


class _CouplingFn(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x, s, t, a, mask_id, c0, ct, parity, scale_id, inverse):
        B, C, H, W = x.shape
        n_per = C * H * W
        y = torch.empty_like(x)
        grid = (B, triton.cdiv(n_per, BLOCK))
        ld_parts = torch.empty(grid, device=x.device, dtype=x.dtype)
        _coupling_fwd_kernel[grid](x, s, t, a, y, ld_parts, n_per, H * W, W, c0, ct, parity,
                                   INVERSE=inverse, MASK=mask_id, SCALE=scale_id, BLOCK=BLOCK)
        ld = ld_parts.sum(1)
        ctx.save_for_backward(x, s, t, a)
        ctx.cfg = (mask_id, c0, ct, parity, scale_id, inverse)
        return y, ld

    @staticmethod
    def backward(ctx, dy, dld):
        x, s, t, a = ctx.saved_tensors
        mask_id, c0, ct, parity, scale_id, inverse = ctx.cfg
        B, C, H, W = x.shape
        n_per = C * H * W
        dy = dy.contiguous() if dy is not None else torch.zeros_like(x)
        dld = dld.contiguous() if dld is not None else torch.zeros(B, device=x.device, dtype=x.dtype)
        dx = torch.empty_like(x)
        ds = torch.empty_like(s)
        dt = torch.empty_like(t)
        da_terms = torch.empty_like(s) if scale_id == _SCALE_IDS["tanh"] else a
        grid = (B, triton.cdiv(n_per, BLOCK))
        _coupling_bwd_kernel[grid](x, s, t, a, dy, dld, dx, ds, dt, da_terms, n_per, H * W, W, c0, ct, parity,
                                   INVERSE=inverse, MASK=mask_id, SCALE=scale_id, BLOCK=BLOCK)
        da = da_terms.sum((0, 2, 3)) if ctx.needs_input_grad[3] and scale_id == _SCALE_IDS["tanh"] else None
        return dx, ds, dt, da, None, None, None, None, None, None


def coupling_triton(x, s, t, mask: str, parity: int, scale_map: str, a=None, inverse: bool = False):
    """Fused coupling; same contract as :func:`fastprob.reference.coupling.coupling`."""
    if scale_map not in _SCALE_IDS:
        raise ValueError(f"unknown scale map {scale_map!r}; choose one of {tuple(_SCALE_IDS)}")
    if x.dim() != 4:
        raise ValueError(f"the Triton coupling kernel takes NCHW tensors, got shape {tuple(x.shape)}")
    if mask not in ("checkerboard", "channel"):
        raise ValueError(f"mask must be 'checkerboard' or 'channel', got {mask!r}")
    mask_id, c0, ct, n_a = _geometry(x, s, mask, parity)
    if t.shape != s.shape:
        raise ValueError(f"s and t must have the same shape, got {tuple(s.shape)} and {tuple(t.shape)}")
    _check(x, s, t)
    _check_sizes(x)
    av = _a_vec(a if scale_map == "tanh" else None, n_a, x)
    if av.device != x.device:
        raise ValueError(f"the tanh scale is on {av.device} but x is on {x.device}")
    return _CouplingFn.apply(x, s, t, av, mask_id, c0, ct, int(parity) % 2, _SCALE_IDS[scale_map], bool(inverse))
