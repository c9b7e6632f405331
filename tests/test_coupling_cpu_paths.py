"""The CPU paths of the coupling drop-ins: the reference channel coupling on every kind of
split (pieces left out of the concatenation when empty) against an independent oracle, the
dispatch of (B, C) / (B, C, L) tensors and of strided views (no contiguous() before the
reference, 4-D contiguous views for the Triton kernel), and the adapters' Triton path
(interpreter on CPU) against the peers they replace."""
import pytest
import torch

from fastprob.flows import ops
from fastprob.reference import coupling as rc
from fastprob.reference.scale_maps import apply_scale_map

TOL32 = dict(rtol=3e-5, atol=3e-5)


@pytest.mark.parametrize("shape", [(1, 5), (1, 5, 3), (1, 5, 2, 3)])
@pytest.mark.parametrize("split", [(0, 5), (0, 2), (3, 2), (1, 3)])
@pytest.mark.parametrize("inverse", [False, True])
def test_reference_channel_coupling_is_the_affine_map(shape, split, inverse):
    """The map x -> y is affine: its Jacobian (autograd, float64) must be diagonal with
    exp(+-g) on the transformed channels and 1 elsewhere, its log-determinant the returned
    one, and y(0) the shift (forward) or -shift * exp(-g) (inverse) on the block, 0 elsewhere."""
    g0 = torch.Generator().manual_seed(0)
    c0, ct = split
    ps = (shape[0], ct, *shape[2:])
    s = torch.randn(ps, generator=g0, dtype=torch.float64)
    t = torch.randn(ps, generator=g0, dtype=torch.float64)
    x = torch.randn(shape, generator=g0, dtype=torch.float64)

    def f(v):
        return rc.coupling(v.view(shape), s, t, "channel", 0, "sigmoid_eps", inverse=inverse, split=split)[0].flatten()

    jac = torch.autograd.functional.jacobian(f, x.flatten())
    g = apply_scale_map(s, "sigmoid_eps")
    block = torch.zeros(shape, dtype=torch.bool)
    block[:, c0:c0 + ct] = True
    diag = torch.ones(shape, dtype=torch.float64)
    diag[block] = torch.exp(-g if inverse else g).flatten()
    torch.testing.assert_close(jac, torch.diag(diag.flatten()), rtol=1e-12, atol=1e-12)
    _, ld = rc.coupling(x, s, t, "channel", 0, "sigmoid_eps", inverse=inverse, split=split)
    torch.testing.assert_close(ld[0], torch.linalg.slogdet(jac).logabsdet, rtol=1e-12, atol=1e-12)
    y0 = f(torch.zeros_like(x)).view(shape)
    want = torch.zeros(shape, dtype=torch.float64)
    want[block] = (-t * torch.exp(-g) if inverse else t).flatten()
    torch.testing.assert_close(y0, want, rtol=1e-12, atol=1e-12)


def _run_all(fn, inputs):
    y, ld = fn(*inputs)
    w = torch.linspace(-1, 1, y.numel()).view_as(y)
    grads = torch.autograd.grad((y * w).sum() + (ld * torch.linspace(0.5, 1.5, ld.numel())).sum(), inputs)
    return y.detach(), ld.detach(), grads


@pytest.mark.parametrize("dims", [(), (3,), (2, 3)])
@pytest.mark.parametrize("layout", ["st", "ts_interleaved"])
def test_ops_takes_views_and_low_rank_tensors_on_both_backends(dims, layout):
    """x a strided view (a channel slice of a wider tensor), (B, C), (B, C, L) or NCHW; the
    reference (no copy first) and the Triton kernel (interpreter) agree with the reference
    on contiguous copies, values and gradients."""
    pytest.importorskip("triton", reason="triton is not installed")
    g = torch.Generator().manual_seed(3)
    wide = torch.randn(4, 9, *dims, generator=g)
    h = (2 * torch.randn(4, 6, *dims, generator=g)).requires_grad_()
    x = wide.requires_grad_()

    def run(backend, contiguous):
        def fn(w, hh):
            v = w[:, 2:7]  # channels 2..6 of 9: not contiguous
            v = v.contiguous() if contiguous else v
            return ops.coupling_packed(v, hh, "channel", 0, "clamp_atan", layout, split=(1, 3), const=1.5,
                                       backend=backend)
        return _run_all(fn, [x, h])

    ref = run("torch", True)
    for backend in ("torch", "triton"):
        out = run(backend, False)
        assert out[0].shape == (4, 5, *dims)
        torch.testing.assert_close(out[0], ref[0], **TOL32)
        torch.testing.assert_close(out[1], ref[1], **TOL32)
        for a, b in zip(out[2], ref[2]):
            torch.testing.assert_close(a, b, **TOL32)


def test_nflows_and_normflows_vectors_on_the_triton_kernel_match_the_peers():
    """The adapters hand (B, D) tensors to ops as they are; on the Triton kernel (interpreter)
    they become (B, D, 1, 1) views: same values, log-determinants and gradients as the peers."""
    pytest.importorskip("triton", reason="triton is not installed")
    pytest.importorskip("nflows", reason="nflows is not installed (pip install 'fastprob[compat]')")
    pytest.importorskip("normflows", reason="normflows is not installed (pip install 'fastprob[compat]')")
    import normflows as nf
    from nflows.nn import nets as nfnets
    from nflows.transforms import coupling as nfc
    from nflows.utils import torchutils

    from fastprob.compat import counters, reset_counters
    from fastprob.compat import nflows as fnf
    from fastprob.compat import normflows as fnm

    D = 7
    mask = torchutils.create_mid_split_binary_mask(D)

    def net(i, o):
        return nfnets.ResidualNet(i, o, hidden_features=8, num_blocks=1)

    torch.manual_seed(0)
    peer_a = nfc.AffineCouplingTransform(mask, net)
    torch.manual_seed(0)
    ours_a = fnf.AffineCouplingTransform(mask, net, backend="triton")
    torch.manual_seed(0)
    peer_b = nf.flows.AffineCouplingBlock(nf.nets.MLP([4, 8, 6]), True, "sigmoid", "channel")
    ours_b = fnm.AffineCouplingBlock(nf.nets.MLP([4, 8, 6]), True, "sigmoid", "channel", backend="triton")
    ours_b.load_state_dict(peer_b.state_dict())
    ours_a.load_state_dict(peer_a.state_dict())
    x = (2 * torch.randn(5, D)).requires_grad_()
    reset_counters()
    for peer, ours in ((peer_a, ours_a), (peer_b, ours_b)):
        for which in ("forward", "inverse"):
            p = _run_all(lambda v: getattr(peer, which)(v), [x])
            o = _run_all(lambda v: getattr(ours, which)(v), [x])
            for a, b in zip((o[0], o[1], *o[2]), (p[0], p[1], *p[2])):
                torch.testing.assert_close(a, b, **TOL32)
    c = counters()
    assert c["nflows.AffineCouplingTransform"]["fast"] == 2 and c["normflows.AffineCouplingBlock"]["fast"] == 2


@pytest.mark.parametrize("name", ["GLOWCouplingBlock", "RNVPCouplingBlock"])
def test_freia_halves_on_the_reference_equal_the_whole_tensor_kernel(name):
    """On the reference each half is transformed as a view and concatenated once; on the
    Triton kernel each half rewrites the whole tensor: conditioned images, both directions,
    same values, log-determinants and gradients."""
    pytest.importorskip("triton", reason="triton is not installed")
    pytest.importorskip("FrEIA", reason="FrEIA is not installed (pip install 'fastprob[compat]')")
    from fastprob.compat import freia as ff

    def conv(i, o):
        return torch.nn.Conv2d(i, o, 3, padding=1)

    torch.manual_seed(0)
    ref = getattr(ff, name)([(5, 3, 4)], dims_c=[(2, 3, 4)], subnet_constructor=conv, split_len=2,
                            backend="torch")
    tri = getattr(ff, name)([(5, 3, 4)], dims_c=[(2, 3, 4)], subnet_constructor=conv, split_len=2,
                            backend="triton")
    tri.load_state_dict(ref.state_dict())
    x = torch.randn(2, 5, 3, 4).requires_grad_()
    c = [torch.randn(2, 2, 3, 4)]
    for rev in (False, True):
        def run(block):
            def fn(v):
                (y,), j = block([v], c, rev=rev)
                return y, j
            return _run_all(fn, [x])
        a, b = run(ref), run(tri)
        for u, v in zip((a[0], a[1], *a[2]), (b[0], b[1], *b[2])):
            torch.testing.assert_close(u, v, **TOL32)


def test_zuko_indices_are_computed_once_per_mask_buffer():
    pytest.importorskip("zuko", reason="zuko is not installed (pip install 'fastprob[compat]')")
    from fastprob.compat import zuko as fz

    mask = torch.tensor([True, False, False, True, False, True])
    lazy = fz.GeneralCouplingTransform(6, 0, mask)
    a1, b1 = lazy().idx_a, lazy().idx_b
    assert lazy().idx_a is a1  # cached: not recomputed per context
    assert a1.tolist() == [0, 3, 5] and b1.tolist() == [1, 2, 4]
    lazy.mask = lazy.mask.clone()  # what .to(device) does to the buffer
    a2, b2 = lazy().idx_a, lazy().idx_b
    assert a2 is not a1 and a2.tolist() == [0, 3, 5] and b2.tolist() == [1, 2, 4]
