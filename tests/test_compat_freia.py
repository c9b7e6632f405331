"""fastprob.compat.freia against FrEIA's own coupling blocks: same parameters -> same outputs,
log-Jacobian-determinants and gradients, both directions, 1-D and image inputs, conditions;
the log-determinant against the float64 autograd Jacobian; the fallbacks; a SequenceINN.

FrEIA's own tests cannot be run here: its only PyPI release (0.2, an sdist) ships no test
files (README, "FrEIA" section)."""
import pytest
import torch

pytest.importorskip("FrEIA", reason="FrEIA is not installed (pip install 'fastprob[compat]')")

import FrEIA.framework as Ff  # noqa: E402
import FrEIA.modules as Fm  # noqa: E402

from fastprob.compat import counters, reset_counters  # noqa: E402
from fastprob.compat import freia as ff  # noqa: E402

CLASSES = ["GLOWCouplingBlock", "RNVPCouplingBlock", "AffineCouplingOneSided"]


def mlp(i, o):
    return torch.nn.Sequential(torch.nn.Linear(i, 12), torch.nn.Tanh(), torch.nn.Linear(12, o))


def conv(i, o):
    return torch.nn.Conv2d(i, o, 3, padding=1)


# (input dims, subnet, condition dims, split_len)
def conv1d(i, o):
    return torch.nn.Conv1d(i, o, 3, padding=1)


CASES = {"vector": ((5,), mlp, [], 0.5), "vector_cond_split2": ((6,), mlp, [(3,)], 2),
         "sequence_split2": ((5, 7), conv1d, [], 2),
         "image": ((3, 4, 5), conv, [], 0.5), "image_cond": ((4, 3, 3), conv, [(2, 3, 3)], 0.5)}


def _pair(name, case, **kw):
    dims, sub, dims_c, split = CASES[case]
    split = kw.pop("split_len", split)
    torch.manual_seed(0)
    peer = getattr(Fm, name)([dims], dims_c=dims_c, subnet_constructor=sub, split_len=split, **kw)
    ours = getattr(ff, name)([dims], dims_c=dims_c, subnet_constructor=sub, split_len=split, **kw)
    ours.load_state_dict(peer.state_dict())
    for m in (peer, ours):  # wide subnet outputs so the soft clamps bend
        for p in m.parameters():
            p.data.mul_(2.5)
    g = torch.Generator().manual_seed(1)
    x = (2 * torch.randn(4, *dims, generator=g)).requires_grad_()
    c = [torch.randn(4, *d, generator=g) for d in dims_c]
    return peer, ours, x, c


def _outs(block, x, c, rev):
    (y,), j = block([x], c, rev=rev)
    w = torch.linspace(-1, 1, y.numel()).view_as(y)
    grads = torch.autograd.grad((y * w).sum() + (j * torch.linspace(0.5, 2, j.numel())).sum(),
                                [x, *block.parameters()])
    return y, j, grads


# every class x clamp activation on conditioned vectors with an integer split; every class on
# images (conv subnets) with and without an image condition; (B, C, L) sequences
GRID = ([(n, "vector_cond_split2", a) for n in CLASSES for a in ("ATAN", "TANH", "SIGMOID")]
        + [(n, "image_cond", "ATAN") for n in CLASSES] + [(n, "image", "TANH") for n in CLASSES]
        + [("GLOWCouplingBlock", "vector", "SIGMOID"), ("AffineCouplingOneSided", "image", "SIGMOID"),
           ("GLOWCouplingBlock", "sequence_split2", "ATAN"), ("RNVPCouplingBlock", "sequence_split2", "TANH")])


@pytest.mark.parametrize("name,case,act", GRID)
def test_same_outputs_logdets_and_gradients_as_freia(name, case, act):
    peer, ours, x, c = _pair(name, case, clamp_activation=act)
    reset_counters()
    for rev in (False, True):
        y0, j0, g0 = _outs(peer, x, c, rev)
        y1, j1, g1 = _outs(ours, x, c, rev)
        torch.testing.assert_close(y1, y0, rtol=1e-5, atol=3e-5)
        torch.testing.assert_close(j1, j0, rtol=1e-5, atol=3e-5)
        for a, b in zip(g1, g0):
            torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-4)
    assert counters()[f"FrEIA.{name}"] == {"fast": 2, "fallback": 0, "reasons": {}}


@pytest.mark.parametrize("name", CLASSES)
@pytest.mark.parametrize("backend", ["torch", "triton"])
def test_logdet_is_the_autograd_jacobian_float64(name, backend):
    """Oracle independent of FrEIA: log|det dy/dx| by autograd, and rev undoes forward, in
    float64 on the reference and on the Triton kernel (interpreter on CPU)."""
    if backend == "triton":
        pytest.importorskip("triton", reason="triton is not installed")
    torch.manual_seed(2)
    block = getattr(ff, name)([(5,)], dims_c=[(2,)], subnet_constructor=mlp, clamp=1.5, backend=backend).double()
    for p in block.parameters():
        p.data.mul_(3.0)
    x = torch.randn(1, 5, dtype=torch.float64)
    c = [torch.randn(1, 2, dtype=torch.float64)]
    (y,), j = block([x], c)
    jac = torch.autograd.functional.jacobian(lambda v: block([v.view(1, 5)], c)[0][0].flatten(), x.flatten())
    torch.testing.assert_close(j[0], torch.linalg.slogdet(jac).logabsdet, rtol=1e-10, atol=1e-10)
    (xb,), jb = block([y], c, rev=True)
    torch.testing.assert_close(xb, x, rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(jb, -j, rtol=1e-12, atol=1e-12)


@pytest.mark.filterwarnings("ignore:Initializing zero-element tensors")  # the empty half's subnet
@pytest.mark.parametrize("kw,reason", [
    (dict(clamp_activation=lambda u: torch.tanh(u) * 0.9), "custom clamp_activation function"),
    (dict(clamp_activation="SIGMOID", clamp=3.0),
     "clamp_activation 'SIGMOID' with clamp 3.0 (fused: ATAN, TANH, SIGMOID with clamp 2)"),
    (dict(clamp=0.0), "clamp 0.0 (fused ATAN: clamp > 0)"),
    (dict(split_len=0), "an empty half (split_len 0 or all channels)"),
])
def test_unsupported_configurations_run_freia_code(kw, reason):
    peer, ours, x, c = _pair("GLOWCouplingBlock", "vector", **kw)
    reset_counters()
    (y0,), j0 = peer([x], c)
    (y1,), j1 = ours([x], c)
    torch.testing.assert_close(y1, y0, rtol=0, atol=0)
    torch.testing.assert_close(j1, j0, rtol=0, atol=0)
    assert counters()["FrEIA.GLOWCouplingBlock"] == {"fast": 0, "fallback": 1, "reasons": {reason: 1}}


def test_user_subclass_overriding_a_coupling_falls_back():
    class Mine(ff.GLOWCouplingBlock):
        def _coupling1(self, x1, u2, rev=False):
            y, j = super()._coupling1(x1, u2, rev)
            return y + 1.0, j

    torch.manual_seed(0)
    block = Mine([(4,)], subnet_constructor=mlp)
    x = torch.randn(3, 4)
    reset_counters()
    (y,), _ = block([x])
    (xb,), _ = block([y], rev=False)  # second forward: both calls fall back
    assert counters()["FrEIA.GLOWCouplingBlock"]["reasons"] == {"subclass overrides _coupling1": 2}


def test_install_swaps_the_blocks_of_a_sequence_inn():
    torch.manual_seed(4)
    peer = Ff.SequenceINN(6)
    for k in range(3):
        peer.append(Fm.GLOWCouplingBlock, subnet_constructor=mlp)
        peer.append(Fm.PermuteRandom, seed=k)
    ff.install()
    try:
        ours = Ff.SequenceINN(6)
        for k in range(3):
            ours.append(Fm.GLOWCouplingBlock, subnet_constructor=mlp)
            ours.append(Fm.PermuteRandom, seed=k)
    finally:
        ff.uninstall()
    assert Fm.GLOWCouplingBlock is not ff.GLOWCouplingBlock
    assert sum(type(m) is ff.GLOWCouplingBlock for m in ours.module_list) == 3
    ours.load_state_dict(peer.state_dict())
    x = torch.randn(16, 6)
    reset_counters()
    z0, j0 = peer(x)
    z1, j1 = ours(x)
    torch.testing.assert_close(z1, z0, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(j1, j0, rtol=1e-5, atol=1e-5)
    xb, _ = ours(z1, rev=True)
    torch.testing.assert_close(xb, x, rtol=1e-4, atol=1e-4)
    assert counters()["FrEIA.GLOWCouplingBlock"]["fast"] == 6


def test_backends_report_probes_the_dropins():
    from fastprob.compat._report import adapter_report

    rows = dict(adapter_report())
    for name in ("FrEIA.GLOWCouplingBlock", "FrEIA.AffineCouplingOneSided"):
        assert rows[name].startswith("FrEIA 0.2") and "fast path" in rows[name], rows
