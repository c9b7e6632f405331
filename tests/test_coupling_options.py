"""The coupling options other flow libraries need, kernel vs reference and reference vs an
independent oracle: the scale maps sigmoid_eps (nflows), rsigmoid (normflows' "sigmoid"),
atan (FrEIA's soft clamp), packed network outputs in three layouts, arbitrary channel
splits.  Both directions, all gradients, odd shapes; float64 log-determinants against the
autograd Jacobian."""
import itertools
import math

import pytest
import torch

triton = pytest.importorskip("triton", reason="triton is not installed (pip install fastprob[gpu])")

from fastprob.kernels.triton import coupling as tc  # noqa: E402
from fastprob.reference import coupling as rc  # noqa: E402
from fastprob.reference.scale_maps import apply_scale_map  # noqa: E402

DEV = "cuda" if torch.cuda.is_available() else "cpu"
TOL32 = dict(rtol=3e-5, atol=3e-5)
TOL64 = dict(rtol=1e-10, atol=1e-10)


pytestmark = pytest.mark.usefixtures("poison_empty")  # unwritten outputs show up as NaN


def _grad_compare(run_ref, run_tri, inputs, tol):
    """Outputs and gradients of every input of both implementations agree and are finite."""
    outs = []
    for f in (run_ref, run_tri):
        y, ld = f(*inputs)
        gy = torch.linspace(-1, 1, y.numel(), dtype=y.dtype, device=DEV).view_as(y)
        gl = torch.linspace(0.5, 1.5, ld.numel(), dtype=y.dtype, device=DEV)
        grads = torch.autograd.grad((y * gy).sum() + (ld * gl).sum(), inputs)
        outs.append((y.detach(), ld.detach(), grads))
    (y0, l0, g0), (y1, l1, g1) = outs
    torch.testing.assert_close(y1, y0, **tol)
    torch.testing.assert_close(l1, l0, **tol)
    for i, (u, v) in enumerate(zip(g1, g0)):
        assert torch.isfinite(u).all(), f"gradient {i} has unwritten (NaN) entries"
        torch.testing.assert_close(u, v, **tol, msg=f"gradient of input {i}")


def _rand(shape, scale=1.0, seed=0, dtype=torch.float32):
    g = torch.Generator().manual_seed(seed)
    return (scale * torch.randn(shape, generator=g, dtype=dtype)).to(DEV).requires_grad_()


MAPS = [("sigmoid_eps", None), ("sigmoid_eps", 0.05), ("rsigmoid", None), ("atan", None), ("atan", 0.7)]


@pytest.mark.parametrize("scale_map,const", MAPS)
@pytest.mark.parametrize("mask,inverse", [("checkerboard", False), ("channel", True), ("channel", False),
                                          ("checkerboard", True)])
def test_new_scale_maps_match_reference(scale_map, const, mask, inverse):
    shape = (2, 3, 5, 7)  # odd channel count and spatial sizes
    sshape = shape if mask == "checkerboard" else (2, 2, 5, 7)
    # wide s so the atan folding (|s / clamp| > 1) and the sigmoid tails are exercised
    x, s, t = _rand(shape, seed=1), _rand(sshape, 3.0, seed=2), _rand(sshape, seed=3)
    kw = dict(inverse=inverse, const=const)
    _grad_compare(lambda *v: rc.coupling(*v, mask, 1, scale_map, **kw),
                  lambda *v: tc.coupling_triton(*v, mask, 1, scale_map, **kw), [x, s, t], TOL32)


def _pack(s, t, layout):
    """The network output h that holds s and t in ``layout``, built without split_packed."""
    if layout == "st":
        return torch.cat([s, t], 1)
    if layout == "ts":
        return torch.cat([t, s], 1)
    return torch.stack([t, s], 2).flatten(1, 2)  # channel 2k = t_k, 2k + 1 = s_k


@pytest.mark.parametrize("layout", ["st", "ts", "ts_interleaved"])
@pytest.mark.parametrize("mask,inverse,split", [("channel", False, (1, 3)), ("channel", True, None),
                                                ("checkerboard", True, None)])
def test_packed_layouts(layout, mask, inverse, split):
    B, C, H, W = 3, 5, 3, 2
    ct = C if mask == "checkerboard" else (split[1] if split else C - C // 2)
    s, t = _rand((B, ct, H, W), seed=4), _rand((B, ct, H, W), seed=5)
    x = _rand((B, C, H, W), seed=6)
    # the packed path gives what the separate-tensor path gives on s, t placed by hand
    h = _pack(s, t, layout).detach().requires_grad_()
    y_sep, ld_sep = rc.coupling(x, s, t, mask, 0, "sigmoid_eps", inverse=inverse, split=split)
    y_pk, ld_pk = rc.coupling_packed(x, h, mask, 0, "sigmoid_eps", layout, inverse=inverse, split=split)
    torch.testing.assert_close(y_pk, y_sep, rtol=0, atol=0)
    torch.testing.assert_close(ld_pk, ld_sep, rtol=0, atol=0)
    kw = dict(layout=layout, inverse=inverse, split=split)
    _grad_compare(lambda x_, h_: rc.coupling_packed(x_, h_, mask, 0, "sigmoid_eps", **kw),
                  lambda x_, h_: tc.coupling_packed_triton(x_, h_, mask, 0, "sigmoid_eps", **kw), [x, h], TOL32)


@pytest.mark.parametrize("split,inverse", [((0, 1), False), ((2, 3), True), ((1, 4), False), ((4, 1), True),
                                           ((0, 5), False)])
def test_channel_split_sizes(split, inverse):
    x = _rand((2, 5, 3, 3), seed=7)
    s, t = _rand((2, split[1], 3, 3), seed=8), _rand((2, split[1], 3, 3), seed=9)
    a = (0.5 + torch.rand(split[1], generator=torch.Generator().manual_seed(1))).to(DEV).requires_grad_()
    _grad_compare(lambda *v: rc.coupling(*v[:3], "channel", 0, "tanh", a=v[3], inverse=inverse, split=split),
                  lambda *v: tc.coupling_triton(*v[:3], "channel", 0, "tanh", a=v[3], inverse=inverse,
                                                split=split), [x, s, t, a], TOL32)
    # untouched channels are copied exactly
    y, _ = tc.coupling_triton(x, s, t, "channel", 0, "tanh", a=a, inverse=inverse, split=split)
    keep = [c for c in range(5) if not split[0] <= c < split[0] + split[1]]
    assert torch.equal(y[:, keep], x[:, keep])


@pytest.mark.parametrize("scale_map,const,layout,split,wscale", [
    ("sigmoid_eps", 1e-3, "ts", (0, 2), 0.5), ("rsigmoid", None, "ts_interleaved", (1, 2), 0.5),
    ("atan", 1.5, "st", (2, 1), 0.5),
    # the peers' maps (FrEIA 0.2's clamp * 0.636 * atan(s), zuko's softclip), larger s
    ("clamp_atan", 2.0, "st", (0, 2), 1.5), ("softclip", None, "ts_interleaved", (1, 2), 1.5),
    ("softclip", 0.5, "ts", (2, 1), 1.5)])
def test_float64_logdet_is_the_jacobian_and_round_trip(scale_map, const, layout, split, wscale):
    """Reference and kernel in float64: logdet = log|det dy/dx| from the autograd Jacobian
    (the conditioning channels fixed, s and t functions of them); inverse undoes forward."""
    gen = torch.Generator().manual_seed(11)
    B, C, H, W = 1, 3, 2, 3
    ct = split[1]
    wnet = torch.randn(2 * ct * H * W, (C - ct) * H * W, generator=gen, dtype=torch.float64) * wscale
    x0 = torch.randn(B, C, H, W, generator=gen, dtype=torch.float64).to(DEV)
    keep = [c for c in range(C) if not split[0] <= c < split[0] + split[1]]

    def net(x):  # h from the conditioning channels only, as a coupling network would
        return (x[:, keep].flatten(1) @ wnet.to(DEV).T).view(x.shape[0], 2 * ct, H, W)

    for f in (rc.coupling_packed, tc.coupling_packed_triton):
        def fwd(xf):
            x = xf.view(1, C, H, W)
            return f(x, net(x), "channel", 0, scale_map, layout, split=split, const=const)

        y, ld = fwd(x0.flatten())
        jac = torch.autograd.functional.jacobian(lambda v: fwd(v)[0].flatten(), x0.flatten())
        sign, logabs = torch.linalg.slogdet(jac)
        torch.testing.assert_close(ld[0], logabs, **TOL64)
        xb, ldb = f(y, net(y), "channel", 0, scale_map, layout, inverse=True, split=split, const=const)
        torch.testing.assert_close(xb, x0, rtol=1e-12, atol=1e-12)
        torch.testing.assert_close(ldb, -ld, rtol=1e-12, atol=1e-12)


def test_atan_kernel_accuracy_float64():
    """The kernel's atan (folding + half angles + series) against torch.atan over 16 decades."""
    mag = torch.logspace(-8, 8, 97, dtype=torch.float64)
    s = torch.cat([mag, -mag, torch.zeros(1, dtype=torch.float64), torch.tensor([1.0, -1.0, 0.4142, 0.199],
                                                                                 dtype=torch.float64)])
    s = s.view(1, -1, 1, 1).to(DEV)
    x = torch.zeros(1, s.shape[1], 1, 1, dtype=torch.float64, device=DEV)
    y, ld = tc.coupling_triton(x, s, torch.zeros_like(s), "channel", 0, "atan", split=(0, s.shape[1]), const=1.0)
    want = 0.636 * torch.atan(s)
    # logdet is the sum of g; compare the map itself through one-channel calls' sum
    torch.testing.assert_close(ld[0], want.sum(), rtol=1e-13, atol=1e-13)
    for i in range(0, s.shape[1], 13):
        si = s[:, i:i + 1]
        _, ldi = tc.coupling_triton(x[:, :1], si, torch.zeros_like(si), "channel", 0, "atan", split=(0, 1),
                                    const=1.0)
        assert math.isclose(ldi.item(), want[0, i].item(), rel_tol=1e-14, abs_tol=1e-300)


def test_scale_map_formulas():
    """The new maps against their definitions, written out independently."""
    s = torch.linspace(-30, 30, 241, dtype=torch.float64)
    sig = 1.0 / (1.0 + torch.exp(-(s + 2.0)))
    torch.testing.assert_close(apply_scale_map(s, "sigmoid_eps", const=0.01), torch.log(sig + 0.01))
    torch.testing.assert_close(apply_scale_map(s, "rsigmoid"), -torch.log(sig))
    torch.testing.assert_close(apply_scale_map(s, "atan", const=3.0),
                               torch.tensor([3.0 * 0.636 * math.atan(v / 3.0) for v in s.tolist()],
                                            dtype=torch.float64))


def test_bad_options():
    x = torch.randn(2, 4, 3, 3, device=DEV)
    s = torch.randn(2, 2, 3, 3, device=DEV)
    h = torch.randn(2, 4, 3, 3, device=DEV)
    for f in (rc.coupling, tc.coupling_triton):
        with pytest.raises(ValueError, match="takes no constant"):
            f(x, s, s, "channel", 0, "exp", const=0.1)
        with pytest.raises(ValueError, match="clamp"):
            f(x, s, s, "channel", 0, "atan", const=-1.0)
        with pytest.raises(ValueError, match="does not fit"):
            f(x, s, s, "channel", 0, "exp", split=(3, 2))
        with pytest.raises(ValueError, match="channel mask only"):
            f(x, x, x, "checkerboard", 0, "exp", split=(0, 2))
    for f in (rc.coupling_packed, tc.coupling_packed_triton):
        with pytest.raises(ValueError, match="layout"):
            f(x, h, "channel", 0, "exp", "st_interleaved")
    with pytest.raises(ValueError, match="packed network output"):
        tc.coupling_packed_triton(x, s, "channel", 0, "exp", "ts")
