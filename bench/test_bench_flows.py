"""Flow ops and layers: fastprob vs the plain PyTorch a user would write, forward + backward.

Each benchmark runs forward, sums the outputs (and log-determinants) and backpropagates
to the inputs and parameters, on (B, C, H, W) = the tier's ``flow_shape`` (float32).
The device is ``FASTPROB_BENCH_DEVICE`` (default cpu).  On the CPU fastprob's ops
dispatch to their PyTorch references, so these groups measure the dispatch and layer
overhead; on a CUDA device they time the fused Triton kernels against the same plain code.

Groups: coupling (checkerboard and channel masks, tanh scale map), squeeze (standard
order), and the layers AffineCoupling (with its conv net), ActNorm and InvConv1x1; the
anchor of each is the plain PyTorch version.  Outputs are checked equal first.
"""
import os

import pytest
import torch

from bench import suite


def _dev():
    return torch.device(os.environ.get("FASTPROB_BENCH_DEVICE", "cpu"))


def _fwd_bwd(fn, inputs):
    outs = fn()
    loss = sum(o.float().sum() for o in outs)
    return torch.autograd.grad(loss, inputs)


# --- plain PyTorch peers: written directly from the formulas, no fastprob code --------------
def plain_checkerboard_coupling(x, s, t, a, parity):
    H, W = x.shape[2:]
    b = ((torch.arange(H, device=x.device)[:, None] + torch.arange(W, device=x.device)[None, :] + parity) % 2)
    b = b.to(x.dtype)
    g = a.view(1, -1, 1, 1) * torch.tanh(s) * b
    y = b * (x * torch.exp(g) + t) + (1 - b) * x
    return y, g.sum(dim=(1, 2, 3))


def plain_channel_coupling(x, s, t, a, parity):
    c = x.shape[1] // 2
    keep, tr = (x[:, :c], x[:, c:]) if parity == 0 else (x[:, c:], x[:, :c])
    g = a.view(1, -1, 1, 1) * torch.tanh(s)
    yt = tr * torch.exp(g) + t
    y = torch.cat([keep, yt], 1) if parity == 0 else torch.cat([yt, keep], 1)
    return y, g.sum(dim=(1, 2, 3))


def plain_squeeze(x):
    B, C, H, W = x.shape
    return x.view(B, C, H // 2, 2, W // 2, 2).permute(0, 1, 3, 5, 2, 4).reshape(B, 4 * C, H // 2, W // 2)


@pytest.fixture(scope="module")
def tensors(sizes):
    torch.manual_seed(0)
    B, C, H, W = sizes["flow_shape"]
    d = _dev()
    x = torch.randn(B, C, H, W, device=d, requires_grad=True)
    s_full = (0.5 * torch.randn(B, C, H, W, device=d)).requires_grad_()
    t_full = torch.randn(B, C, H, W, device=d, requires_grad=True)
    ct = C - C // 2
    s_half = (0.5 * torch.randn(B, ct, H, W, device=d)).requires_grad_()
    t_half = torch.randn(B, ct, H, W, device=d, requires_grad=True)
    a_full = (1 + 0.1 * torch.randn(C, device=d)).requires_grad_()
    a_half = (1 + 0.1 * torch.randn(ct, device=d)).requires_grad_()
    return dict(x=x, s_full=s_full, t_full=t_full, s_half=s_half, t_half=t_half, a_full=a_full, a_half=a_half)


def _shape(sizes):
    return "x".join(map(str, sizes["flow_shape"]))


@pytest.mark.parametrize("mask", ["checkerboard", "channel"])
@pytest.mark.parametrize("impl", ["fastprob", "torch-plain"])
def test_coupling(benchmark, tensors, sizes, mask, impl):
    from fastprob.flows import ops

    T = tensors
    x = T["x"]
    if mask == "checkerboard":
        s, t, a = T["s_full"], T["t_full"], T["a_full"]
        plain = plain_checkerboard_coupling
    else:
        s, t, a = T["s_half"], T["t_half"], T["a_half"]
        plain = plain_channel_coupling
    if mask == "channel":  # the plain peer's split must be fastprob's split for the comparison
        from fastprob.reference.masks import channel_split

        assert channel_split(x.shape[1], 0) == (x.shape[1] // 2, x.shape[1] - x.shape[1] // 2)
    fp = lambda: ops.coupling(x, s, t, mask, 0, "tanh", a)  # noqa: E731
    pl = lambda: plain(x, s, t, a, 0)  # noqa: E731
    (y1, l1), (y2, l2) = fp(), pl()
    torch.testing.assert_close(y1, y2)
    torch.testing.assert_close(l1, l2, rtol=1e-4, atol=1e-2)
    fn = fp if impl == "fastprob" else pl
    suite.run(benchmark, f"coupling-{mask}-tanh {_shape(sizes)} fwd+bwd", "fastprob" if impl == "fastprob" else "peer",
              lambda: _fwd_bwd(fn, (x, s, t, a)), anchor=impl != "fastprob", rounds=sizes["flow_rounds"],
              iterations=sizes["flow_iters"])


@pytest.mark.parametrize("impl", ["fastprob", "torch-plain"])
def test_squeeze(benchmark, tensors, sizes, impl):
    from fastprob.flows import ops

    x = tensors["x"]
    torch.testing.assert_close(ops.squeeze(x, "standard"), plain_squeeze(x), rtol=0, atol=0)
    fn = (lambda: (ops.squeeze(x, "standard"),)) if impl == "fastprob" else (lambda: (plain_squeeze(x),))
    suite.run(benchmark, f"squeeze-standard {_shape(sizes)} fwd+bwd", "fastprob" if impl == "fastprob" else "peer",
              lambda: _fwd_bwd(fn, (x,)), anchor=impl != "fastprob", rounds=sizes["flow_rounds"],
              iterations=sizes["flow_iters"])


class PlainCoupling(torch.nn.Module):
    """A checkerboard affine coupling layer the usual way, sharing fastprob's network."""

    def __init__(self, net, a, parity=0):
        super().__init__()
        self.net, self.a, self.parity = net, a, parity

    def forward(self, x):
        B, C, H, W = x.shape
        b = ((torch.arange(H, device=x.device)[:, None] + torch.arange(W, device=x.device)[None, :]
              + self.parity) % 2).to(x.dtype)
        h = self.net(torch.cat([x * (1 - b), b.expand(B, 1, H, W)], 1))
        s, t = h[:, :C], h[:, C:]
        return plain_checkerboard_coupling(x, s, t, self.a, self.parity)


class PlainActNorm(torch.nn.Module):
    def __init__(self, bias, log_scale):
        super().__init__()
        self.bias, self.log_scale = bias, log_scale

    def forward(self, x):
        z = (x + self.bias.view(1, -1, 1, 1)) * torch.exp(self.log_scale.view(1, -1, 1, 1))
        return z, (self.log_scale.sum() * x.shape[2] * x.shape[3]).expand(x.shape[0])


class PlainInvConv(torch.nn.Module):
    def __init__(self, m):
        super().__init__()
        self.m = m  # fastprob's layer supplies the LU parameters; the mixing is plain conv2d

    def forward(self, x):
        m = self.m
        C = x.shape[1]
        L = torch.tril(m.L, -1) + torch.eye(C, device=x.device)
        U = torch.triu(m.U, 1) + torch.diag(m.sign_s * torch.exp(m.log_s))
        W = m.P @ L @ U
        return torch.nn.functional.conv2d(x, W.view(C, C, 1, 1)), (m.log_s.sum() * x.shape[2] * x.shape[3]).expand(
            x.shape[0])


@pytest.fixture(scope="module")
def layers(sizes):
    from fastprob.flows import ActNorm, AffineCoupling, InvConv1x1

    torch.manual_seed(1)
    C = sizes["flow_shape"][1]
    cp = AffineCoupling(C, "checkerboard", 0, "tanh", hidden=sizes["flow_hidden"]).to(_dev())
    with torch.no_grad():  # a non-identity coupling (the last conv starts at zero)
        for p in cp.net.parameters():
            p.add_(0.05 * torch.randn_like(p))
    an = ActNorm(C).to(_dev())
    with torch.no_grad():
        an.bias.normal_()
        an.log_scale.normal_(0, 0.1)
    an.initialized.fill_(True)
    ic = InvConv1x1(C, seed=0).to(_dev())
    return {"coupling": (cp, PlainCoupling(cp.net, cp.a)), "actnorm": (an, PlainActNorm(an.bias, an.log_scale)),
            "invconv1x1": (ic, PlainInvConv(ic))}


@pytest.mark.parametrize("layer", ["coupling", "actnorm", "invconv1x1"])
@pytest.mark.parametrize("impl", ["fastprob", "torch-plain"])
def test_layer(benchmark, tensors, layers, sizes, layer, impl):
    x = tensors["x"]
    fast, plain = layers[layer]
    (y1, l1), (y2, l2) = fast(x), plain(x)
    torch.testing.assert_close(y1, y2, rtol=1e-4, atol=1e-4)
    torch.testing.assert_close(l1, l2, rtol=1e-4, atol=1e-3)
    mod = fast if impl == "fastprob" else plain
    params = tuple(p for p in fast.parameters() if p.requires_grad)
    suite.run(benchmark, f"layer-{layer} {_shape(sizes)} fwd+bwd", "fastprob" if impl == "fastprob" else "peer",
              lambda: _fwd_bwd(lambda: mod(x), (x,) + params), anchor=impl != "fastprob",
              rounds=sizes["flow_rounds"], iterations=max(1, sizes["flow_iters"] // 2))
