"""Fused affine coupling in Triton: forward/inverse and a one-pass backward.

One program handles BLOCK consecutive elements of one sample.  It reads x, and s, t at
transformed positions only, applies the scale map and the mask, writes every element
of the output (transformed positions get the affine map, the others are copied - no
concatenation), and writes its partial sum of g(s) to a (B, n_programs) buffer that is
summed in a fixed order afterwards (no atomics: the logdet is bit-identical from run to
run).  The backward kernel recomputes exp(g) from (x, s) and writes dx, ds, dt (zeros
where s and t are unused) and, for the tanh scale, each element's contribution to the
gradient of ``a`` (a (B, C_t, H, W) buffer reduced per channel afterwards, again without
atomics).  Sample offsets are 64-bit, so tensors past 2**31 elements are addressed
correctly.  s and t are
addressed through (batch stride, channel offset, channel step), so the kernel reads them
from separate tensors or straight from a packed network output in any of the layouts
"st", "ts", "ts_interleaved" (no slicing copies), and writes their gradient into one dh.

Reference (same signature): ``fastprob.reference.coupling.coupling``.
Runs on CPU tensors under ``TRITON_INTERPRET=1`` (how the tests check it).
"""
from __future__ import annotations

import math

import torch
import triton
import triton.language as tl

from fastprob.reference.coupling import LAYOUTS, resolve_split
from fastprob.reference.scale_maps import ATAN_FACTOR, scale_const

_SCALE_IDS = {"exp": 0, "tanh": 1, "bounded": 2, "sigmoid": 3, "sigmoid_eps": 4, "rsigmoid": 5, "atan": 6,
              "clamp_atan": 7, "softclip": 8}
BLOCK = 1024


@triton.jit
def _tanh(u):
    # tanh from exp (saturates correctly: exp overflow gives +-1)
    e = tl.exp(-2.0 * tl.abs(u))
    th = (1.0 - e) / (1.0 + e)
    return tl.where(u < 0, -th, th)


@triton.jit
def _atan(u, HALF_PI):
    # atan without libdevice (also runs in the interpreter): fold |u| > 1 onto 1/|u|, halve
    # the angle twice (atan u = 2 atan(u / (1 + sqrt(1 + u^2)))) to |v| <= tan(pi/16) ~ 0.199,
    # then 12 odd Taylor terms (the next is < 1e-18 there).  Coefficients are formed as
    # one / n at run time in the tensor's dtype, so float64 keeps full precision (a float
    # literal would be rounded to float32).
    au = tl.abs(u)
    big = au > 1.0
    v = tl.where(big, 1.0 / tl.maximum(au, 1.0), au)
    v = v / (1.0 + tl.sqrt(1.0 + v * v))
    v = v / (1.0 + tl.sqrt(1.0 + v * v))
    v2 = v * v
    one = v2 * 0.0 + 1.0
    p = -one / 23.0
    p = p * v2 + one / 21.0
    p = p * v2 - one / 19.0
    p = p * v2 + one / 17.0
    p = p * v2 - one / 15.0
    p = p * v2 + one / 13.0
    p = p * v2 - one / 11.0
    p = p * v2 + one / 9.0
    p = p * v2 - one / 7.0
    p = p * v2 + one / 5.0
    p = p * v2 - one / 3.0
    r = 4.0 * (v + v * v2 * p)
    r = tl.where(big, HALF_PI - r, r)
    return tl.where(u < 0, -r, r)


@triton.jit
def _sigmoid(v):
    # both branches finite: exp of a non-positive number only
    e = tl.exp(-tl.abs(v))
    return tl.where(v >= 0, 1.0 / (1.0 + e), e / (1.0 + e))


@triton.jit
def _scale(s, a, k_ptr, SCALE: tl.constexpr):
    """g(s) and dg/ds (scale-map ids in _SCALE_IDS); k_ptr holds [eps, clamp or bound;
    clamp * 0.636; pi / 2] in the tensors' dtype (scalar arguments would be float32)."""
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
    elif SCALE == 3 or SCALE == 5:
        v = s + 2.0
        # logsigmoid(v) = min(v, 0) - log(1 + exp(-|v|)); its derivative is sigmoid(-v)
        g = tl.minimum(v, 0.0) - tl.log(1.0 + tl.exp(-tl.abs(v)))
        dg = _sigmoid(-v)
        if SCALE == 5:  # rsigmoid: the reciprocal scale
            g = -g
            dg = -dg
    elif SCALE == 4:
        eps = tl.load(k_ptr)
        sg = _sigmoid(s + 2.0)
        g = tl.log(sg + eps)
        dg = sg * (1.0 - sg) / (sg + eps)
    elif SCALE == 6:
        clamp = tl.load(k_ptr)
        ca = tl.load(k_ptr + 1)
        r = s / clamp
        g = ca * _atan(r, tl.load(k_ptr + 2))
        dg = (ca / clamp) / (1.0 + r * r)
    elif SCALE == 7:
        # clamp_atan: the same soft clamp without the division by clamp inside the atan
        ca = tl.load(k_ptr + 1)
        g = ca * _atan(s, tl.load(k_ptr + 2))
        dg = ca / (1.0 + s * s)
    else:
        # softclip: g = s / q with q = 1 + |s| / bound; dg/ds = 1 / q^2 (the |s| terms cancel)
        q = 1.0 + tl.abs(s) / tl.load(k_ptr)
        g = s / q
        dg = 1.0 / (q * q)
    return g, dg


@triton.jit
def _index(offs, b, HW, W, CT0, CT, PARITY, SB, S_OFF, S_MUL, T_OFF, T_MUL, MASK: tl.constexpr):
    """Whether each element is transformed and its indices into s and t.

    s of sample b, s-channel cs, pixel hw sits at b*SB + (S_OFF + S_MUL*cs)*HW + hw (t alike),
    which covers separate s/t tensors and every layout of a packed network output."""
    c = offs // HW
    hw = offs % HW
    if MASK == 0:
        h = hw // W
        w = hw % W
        trans = ((h + w + PARITY) % 2) == 1
        cs = c
    else:
        trans = (c >= CT0) & (c < CT0 + CT)
        cs = c - CT0
    sidx = b * SB + (S_OFF + S_MUL * cs) * HW + hw
    tidx = b * SB + (T_OFF + T_MUL * cs) * HW + hw
    return trans, sidx, tidx, cs


@triton.jit
def _sample_offsets(BLOCK: tl.constexpr):
    """(sample b as int64, offsets of this program's block within the sample).

    b is 64-bit so that b * N_PER cannot overflow once a tensor has 2**31 elements; the
    offsets within one sample stay 32-bit (N_PER < 2**31 is checked on the host)."""
    b = tl.program_id(0).to(tl.int64)
    offs = tl.program_id(1) * BLOCK + tl.arange(0, BLOCK)
    return b, offs


@triton.jit
def _load(x_ptr, s_ptr, t_ptr, a_ptr, N_PER, HW, W, CT0, CT, PARITY, SB, S_OFF, S_MUL, T_OFF, T_MUL,
          MASK: tl.constexpr, BLOCK: tl.constexpr):
    """This program's block of one sample: x for every element, s, t and a where transformed."""
    b, offs = _sample_offsets(BLOCK)
    inb = offs < N_PER
    x = tl.load(x_ptr + b * N_PER + offs, mask=inb, other=0.0)
    trans, sidx, tidx, cs = _index(offs, b, HW, W, CT0, CT, PARITY, SB, S_OFF, S_MUL, T_OFF, T_MUL, MASK)
    m = inb & trans
    s = tl.load(s_ptr + sidx, mask=m, other=0.0)
    t = tl.load(t_ptr + tidx, mask=m, other=0.0)
    a = tl.load(a_ptr + cs, mask=m, other=0.0)
    return b, offs, inb, m, sidx, tidx, cs, x, s, t, a


@triton.jit
def _coupling_fwd_kernel(x_ptr, s_ptr, t_ptr, a_ptr, y_ptr, ld_ptr, N_PER, HW, W, CT0, CT, PARITY, SB, S_OFF,
                         S_MUL, T_OFF, T_MUL, k_ptr, INVERSE: tl.constexpr, MASK: tl.constexpr,
                         SCALE: tl.constexpr, BLOCK: tl.constexpr):
    b, offs, inb, m, sidx, tidx, cs, x, s, t, a = _load(x_ptr, s_ptr, t_ptr, a_ptr, N_PER, HW, W, CT0, CT,
                                                         PARITY, SB, S_OFF, S_MUL, T_OFF, T_MUL, MASK, BLOCK)
    g, dg = _scale(s, a, k_ptr, SCALE)
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
                         N_PER, HW, W, CT0, CT, PARITY, SB, S_OFF, S_MUL, T_OFF, T_MUL, k_ptr,
                         INVERSE: tl.constexpr, MASK: tl.constexpr, SCALE: tl.constexpr,
                         BLOCK: tl.constexpr):
    b, offs, inb, m, sidx, tidx, cs, x, s, t, a = _load(x_ptr, s_ptr, t_ptr, a_ptr, N_PER, HW, W, CT0, CT,
                                                         PARITY, SB, S_OFF, S_MUL, T_OFF, T_MUL, MASK, BLOCK)
    dy = tl.load(dy_ptr + b * N_PER + offs, mask=inb, other=0.0)
    dld = tl.load(dld_ptr + b)
    g, dg = _scale(s, a, k_ptr, SCALE)
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
    tl.store(dt_ptr + tidx, dt, mask=smask)
    if SCALE == 1:
        # da_ptr is (B, C_t, H, W): each element's term, summed per channel on the host (no atomics)
        th = _tanh(s)
        tl.store(da_ptr + (b * CT + cs) * HW + offs % HW, common * th, mask=m)


def _geometry(x, s, mask, parity, split, packed):
    """(mask id, c0, C_t) after checking the shape of s (or of the packed h)."""
    B, C, H, W = x.shape
    if mask == "checkerboard":
        if split is not None:
            raise ValueError("split applies to the channel mask only")
        c0, ct, mask_id = 0, C, 0
    else:
        c0, ct = resolve_split(C, parity, split)
        mask_id = 1
    want = (B, (2 if packed else 1) * ct, H, W)
    if tuple(s.shape) != want:
        what = "the packed network output" if packed else "s and t"
        raise ValueError(f"{mask} coupling of {C} channels needs {what} of shape {want}, got {tuple(s.shape)}")
    return mask_id, c0, ct


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


def _strides(ct, HW, layout):
    """(SB, S_OFF, S_MUL, T_OFF, T_MUL) of _index for separate s, t (layout None) or a packed h."""
    if layout is None:
        return ct * HW, 0, 1, 0, 1
    sb = 2 * ct * HW
    if layout == "st":
        return sb, 0, 1, ct, 1
    if layout == "ts":
        return sb, ct, 1, 0, 1
    return sb, 1, 2, 0, 2  # ts_interleaved


def _consts(const, like):
    return torch.tensor([const, const * ATAN_FACTOR, math.pi / 2], dtype=like.dtype, device=like.device)


class _CouplingFn(torch.autograd.Function):
    """x, s, t, a -> (y, logdet); with a packed layout ``s`` is the network output h and t is None."""

    @staticmethod
    def forward(ctx, x, s, t, a, cfg):
        mask_id, c0, ct, parity, scale_id, const, inverse, layout = cfg
        B, C, H, W = x.shape
        k = _consts(const, x)
        n_per = C * H * W
        y = torch.empty_like(x)
        grid = (B, triton.cdiv(n_per, BLOCK))
        ld_parts = torch.empty(grid, device=x.device, dtype=x.dtype)
        geo = _strides(ct, H * W, layout)
        _coupling_fwd_kernel[grid](x, s, s if t is None else t, a, y, ld_parts, n_per, H * W, W, c0, ct, parity,
                                   *geo, k, INVERSE=inverse, MASK=mask_id, SCALE=scale_id, BLOCK=BLOCK)
        ld = ld_parts.sum(1)
        ctx.save_for_backward(x, s, t, a)
        ctx.cfg = cfg
        return y, ld

    @staticmethod
    def backward(ctx, dy, dld):
        x, s, t, a = ctx.saved_tensors
        mask_id, c0, ct, parity, scale_id, const, inverse, layout = ctx.cfg
        B, C, H, W = x.shape
        k = _consts(const, x)
        n_per = C * H * W
        dy = dy.contiguous() if dy is not None else torch.zeros_like(x)
        dld = dld.contiguous() if dld is not None else torch.zeros(B, device=x.device, dtype=x.dtype)
        dx = torch.empty_like(x)
        ds = torch.empty_like(s)  # the whole dh when packed: s and t parts both written
        dt = ds if t is None else torch.empty_like(t)
        tanh = scale_id == _SCALE_IDS["tanh"]
        da_terms = torch.zeros((B, ct, H, W), device=x.device, dtype=x.dtype) if tanh else a
        grid = (B, triton.cdiv(n_per, BLOCK))
        geo = _strides(ct, H * W, layout)
        _coupling_bwd_kernel[grid](x, s, s if t is None else t, a, dy, dld, dx, ds, dt, da_terms, n_per, H * W, W,
                                   c0, ct, parity, *geo, k, INVERSE=inverse, MASK=mask_id, SCALE=scale_id,
                                   BLOCK=BLOCK)
        da = da_terms.sum((0, 2, 3)) if ctx.needs_input_grad[3] and tanh else None
        return dx, ds, (None if t is None else dt), da, None


def _run(x, s, t, mask, parity, scale_map, a, inverse, split, const, layout):
    if scale_map not in _SCALE_IDS:
        raise ValueError(f"unknown scale map {scale_map!r}; choose one of {tuple(_SCALE_IDS)}")
    cval = scale_const(scale_map, const)
    if x.dim() != 4:
        raise ValueError(f"the Triton coupling kernel takes NCHW tensors, got shape {tuple(x.shape)}")
    if mask not in ("checkerboard", "channel"):
        raise ValueError(f"mask must be 'checkerboard' or 'channel', got {mask!r}")
    mask_id, c0, ct = _geometry(x, s, mask, parity, split, layout is not None)
    if t is not None and t.shape != s.shape:
        raise ValueError(f"s and t must have the same shape, got {tuple(s.shape)} and {tuple(t.shape)}")
    _check(x, s, *([] if t is None else [t]))
    _check_sizes(x)
    av = _a_vec(a if scale_map == "tanh" else None, ct, x)
    if av.device != x.device:
        raise ValueError(f"the tanh scale is on {av.device} but x is on {x.device}")
    cfg = (mask_id, c0, ct, int(parity) % 2, _SCALE_IDS[scale_map], cval, bool(inverse), layout)
    return _CouplingFn.apply(x, s, t, av, cfg)


def coupling_triton(x, s, t, mask: str, parity: int, scale_map: str, a=None, inverse: bool = False, split=None,
                    const=None):
    """Fused coupling; same contract as :func:`fastprob.reference.coupling.coupling`."""
    return _run(x, s, t, mask, parity, scale_map, a, inverse, split, const, None)


def coupling_packed_triton(x, h, mask: str, parity: int, scale_map: str, layout: str = "st", a=None,
                           inverse: bool = False, split=None, const=None):
    """Fused coupling reading s and t straight from the network output ``h``; same contract as
    :func:`fastprob.reference.coupling.coupling_packed`."""
    if layout not in LAYOUTS:
        raise ValueError(f"unknown parameter layout {layout!r}; choose one of {LAYOUTS}")
    return _run(x, h, None, mask, parity, scale_map, a, inverse, split, const, layout)
