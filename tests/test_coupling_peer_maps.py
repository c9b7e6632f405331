"""The scale maps of the zuko and FrEIA drop-ins, kernel vs reference and both vs independent
oracles: ``clamp_atan`` (FrEIA 0.2's ATAN soft clamp, g = clamp * 0.636 * atan(s)) and
``softclip`` (zuko's MonotonicAffineTransform, g = s / (1 + |s| / bound)).  Both directions,
gradients of every input, odd shapes, packed layouts; float64 log-determinants against the
autograd Jacobian's slogdet."""
import math

import pytest
import torch

pytest.importorskip("triton", reason="triton is not installed (pip install fastprob[gpu])")

from fastprob.kernels.triton import coupling as tc  # noqa: E402
from fastprob.reference import coupling as rc  # noqa: E402
from fastprob.reference.scale_maps import apply_scale_map  # noqa: E402

DEV = "cuda" if torch.cuda.is_available() else "cpu"
TOL32 = dict(rtol=3e-5, atol=3e-5)
TOL64 = dict(rtol=1e-10, atol=1e-10)
MAPS = [("clamp_atan", None), ("clamp_atan", 0.7), ("softclip", None), ("softclip", 1.3)]


pytestmark = pytest.mark.usefixtures("poison_empty")  # unwritten outputs show up as NaN


def _rand(shape, scale=1.0, seed=0, dtype=torch.float32):
    g = torch.Generator().manual_seed(seed)
    return (scale * torch.randn(shape, generator=g, dtype=dtype)).to(DEV).requires_grad_()


def _outputs_and_grads(f, inputs):
    y, ld = f(*inputs)
    gy = torch.linspace(-1, 1, y.numel(), dtype=y.dtype, device=DEV).view_as(y)
    gl = torch.linspace(0.5, 1.5, ld.numel(), dtype=y.dtype, device=DEV)
    return y.detach(), ld.detach(), torch.autograd.grad((y * gy).sum() + (ld * gl).sum(), inputs)


@pytest.mark.parametrize("scale_map,const", MAPS)
# each map in both directions and under both masks (two calls per map keep the interpreter's time down)
@pytest.mark.parametrize("mask,inverse", [("checkerboard", True), ("channel", False)])
def test_kernel_matches_reference(scale_map, const, mask, inverse):
    shape = (2, 3, 5, 7)  # odd channel count and spatial sizes
    sshape = shape if mask == "checkerboard" else (2, 2, 5, 7)
    # wide s: the atan folding (|s| > 1) and the softclip saturation are both exercised
    x, s, t = _rand(shape, seed=1), _rand(sshape, 4.0, seed=2), _rand(sshape, seed=3)
    if const is not None:  # the other direction for the maps' non-default constants
        inverse = not inverse
    kw = dict(inverse=inverse, const=const)
    y0, l0, g0 = _outputs_and_grads(lambda *v: rc.coupling(*v, mask, 1, scale_map, **kw), [x, s, t])
    y1, l1, g1 = _outputs_and_grads(lambda *v: tc.coupling_triton(*v, mask, 1, scale_map, **kw), [x, s, t])
    torch.testing.assert_close(y1, y0, **TOL32)
    torch.testing.assert_close(l1, l0, **TOL32)
    for i, (u, v) in enumerate(zip(g1, g0)):
        assert torch.isfinite(u).all(), f"gradient {i} has unwritten (NaN) entries"
        torch.testing.assert_close(u, v, **TOL32, msg=f"gradient of input {i}")


def test_formulas_and_derivatives():
    """The maps against their definitions written out in Python floats, and the reference's
    derivative against a central finite difference."""
    vals = [-1e4, -30.0, -2.5, -0.3, 0.0, 0.2, 1.0, 7.0, 1e4]
    s = torch.tensor(vals, dtype=torch.float64, requires_grad=True)
    want_atan = torch.tensor([1.5 * 0.636 * math.atan(v) for v in vals], dtype=torch.float64)
    bound = -math.log(1e-3)
    want_soft = torch.tensor([v / (1 + abs(v) / bound) for v in vals], dtype=torch.float64)
    torch.testing.assert_close(apply_scale_map(s, "clamp_atan", const=1.5), want_atan)
    torch.testing.assert_close(apply_scale_map(s, "softclip"), want_soft)
    for name, c in (("clamp_atan", 1.5), ("softclip", 2.0)):
        g = torch.autograd.grad(apply_scale_map(s, name, const=c).sum(), s)[0]
        h = 1e-6
        fd = (apply_scale_map(s.detach() + h, name, const=c) - apply_scale_map(s.detach() - h, name, const=c)) / (2 * h)
        torch.testing.assert_close(g, fd, rtol=1e-6, atol=1e-9)


# float64 log-det vs the autograd Jacobian for these maps: tests/test_coupling_options.py
# (test_float64_logdet_is_the_jacobian_and_round_trip, parametrized with them).


def test_bad_constants():
    x = torch.randn(2, 4, 3, 3, device=DEV)
    s = torch.randn(2, 2, 3, 3, device=DEV)
    for f in (rc.coupling, tc.coupling_triton):
        with pytest.raises(ValueError, match="clamp_atan constant"):
            f(x, s, s, "channel", 0, "clamp_atan", const=0.0)
        with pytest.raises(ValueError, match="slope must lie in"):
            f(x, s, s, "channel", 0, "softclip", const=-1.0)
