"""fastprob.compat.zuko: zuko's own, unmodified tests/test_flows.py (from its sdist, fetched by
pip at test time) against the drop-in, with fast-path counters; and direct equivalence with
zuko's GeneralCouplingTransform (same parameters -> same outputs, log-determinants and
gradients), the log-determinant against the autograd Jacobian, the fallbacks."""
from functools import partial

import pytest
import torch

pytest.importorskip("zuko", reason="zuko is not installed (pip install 'fastprob[compat]')")

from compat_peer import fetch_peer_files, run_peer_tests  # noqa: E402
from zuko.flows import coupling as pc  # noqa: E402
from zuko.transforms import MonotonicAffineTransform, MonotonicRQSTransform  # noqa: E402

from fastprob.compat import counters, reset_counters  # noqa: E402
from fastprob.compat import zuko as fz  # noqa: E402

ADAPTER = "zuko.GeneralCouplingTransform"
B = torch.tensor
# masks (True = conditioning) covering the three geometries of the fused path
MASKS = {"pairs": (6, None), "pairs_odd_first": (4, B([1, 0, 1, 0], dtype=torch.bool)),
         "block": (6, B([1, 1, 1, 0, 0, 0], dtype=torch.bool)),
         "block_middle": (5, B([1, 0, 0, 0, 1], dtype=torch.bool)),
         "gather_odd_count": (5, None), "gather_random": (6, B([0, 1, 1, 0, 1, 0], dtype=torch.bool))}


@pytest.mark.slow  # downloads the peer's sdist and runs its tests in a subprocess
def test_zuko_own_flow_tests_pass_on_the_dropin(request, tmp_path):
    root = fetch_peer_files(request, "zuko", ["tests/test_flows.py"], sdist=True)
    # NICE / RealNVP and the triangular-transform test are the users of the replaced class;
    # the other flows (MAF, NSF, CNF, ...) never build it and would only re-test zuko
    outcomes, counts, out = run_peer_tests(root, ["tests/test_flows.py", "-k", "NICE or triangular"], ["zuko"],
                                           tmp_path)
    assert len(outcomes) == 2, out
    assert all(v == "passed" for v in outcomes.values()), out
    c = counts[ADAPTER]
    # every coupling call of the peer's tests (forward, inverse, log-det, Jacobians) ran fused
    assert c["fast"] >= 40 and c["fallback"] == 0, counts


def _pair(features, context, mask, **kw):
    torch.manual_seed(3)
    peer = pc.GeneralCouplingTransform(features, context, mask, **kw)
    ours = fz.GeneralCouplingTransform(features, context, mask, **kw)
    ours.load_state_dict(peer.state_dict())
    return peer, ours


def _run(lazy, x, c, inverse):
    t = lazy(c)
    if inverse:
        y = t.inv(x)
        return y, t.inv.log_abs_det_jacobian(x, y)
    return t.call_and_ladj(x)


@pytest.mark.parametrize("name", sorted(MASKS))
@pytest.mark.parametrize("context,inverse", [(0, False), (3, True)])
def test_same_outputs_logdets_and_gradients_as_zuko(name, context, inverse):
    features, mask = MASKS[name]
    peer, ours = _pair(features, context, mask)
    g = torch.Generator().manual_seed(5)
    x = (2 * torch.randn(4, 3, features, generator=g)).requires_grad_()  # two batch dimensions
    c = torch.randn(3, context, generator=g) if context else None  # broadcast over the first
    reset_counters()
    res = []
    for lazy in (peer, ours):
        y, ladj = _run(lazy, x, c, inverse)
        w = torch.linspace(-1, 1, y.numel()).view_as(y)
        loss = (y * w).sum() + (ladj * torch.linspace(0.5, 2, ladj.numel()).view_as(ladj)).sum()
        grads = torch.autograd.grad(loss, [x, *lazy.parameters()])
        res.append((y, ladj, grads))
    (y0, l0, g0), (y1, l1, g1) = res
    assert y1.shape == y0.shape == x.shape and l1.shape == l0.shape == x.shape[:-1]
    torch.testing.assert_close(y1, y0, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(l1, l0, rtol=1e-5, atol=1e-5)
    for a, b in zip(g1, g0):
        torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-5)
    assert counters()[ADAPTER]["fast"] >= 1 and counters()[ADAPTER]["fallback"] == 0
    assert ours._geometry[0] == name.split("_")[0]


@pytest.mark.parametrize("name", ["pairs", "block_middle", "gather_odd_count"])
@pytest.mark.parametrize("backend", ["torch", "triton"])
def test_logdet_is_the_autograd_jacobian_float64(name, backend):
    """Oracle independent of zuko: ladj = log|det dy/dx| and the inverse undoes the forward,
    in float64, on the PyTorch reference and on the Triton kernel (interpreter on CPU)."""
    if backend == "triton":
        pytest.importorskip("triton", reason="triton is not installed")
    features, mask = MASKS[name]
    torch.manual_seed(7)
    lazy = fz.GeneralCouplingTransform(features, 2, mask, backend=backend).double()
    for p in lazy.parameters():  # a wide scale so the soft clip bends
        p.data.mul_(3.0)
    c = torch.randn(2, dtype=torch.float64)
    x = torch.randn(features, dtype=torch.float64)
    t = lazy(c)
    y, ladj = t.call_and_ladj(x)
    jac = torch.autograd.functional.jacobian(t, x)
    torch.testing.assert_close(ladj, torch.linalg.slogdet(jac).logabsdet, rtol=1e-10, atol=1e-10)
    torch.testing.assert_close(t.inv(y), x, rtol=1e-12, atol=1e-12)


def test_slope_partial_runs_fused_and_matches():
    uni = partial(MonotonicAffineTransform, slope=0.05)
    peer, ours = _pair(4, 0, None, univariate=uni)
    x = 3 * torch.randn(8, 4)
    reset_counters()
    y0, l0 = peer().call_and_ladj(x)
    y1, l1 = ours().call_and_ladj(x)
    torch.testing.assert_close(y1, y0)
    torch.testing.assert_close(l1, l0)
    assert counters()[ADAPTER]["fast"] == 1


def test_other_univariates_fall_back_to_zuko():
    shapes = ((8,), (8,), (7,))
    peer, ours = _pair(4, 0, None, univariate=MonotonicRQSTransform, shapes=shapes)
    x = torch.randn(8, 4)
    reset_counters()
    y0, l0 = peer().call_and_ladj(x)
    y1, l1 = ours().call_and_ladj(x)
    torch.testing.assert_close(y1, y0, rtol=0, atol=0)
    torch.testing.assert_close(l1, l0, rtol=0, atol=0)
    assert counters()[ADAPTER] == {"fast": 0, "fallback": 1,
                                   "reasons": {"univariate is not MonotonicAffineTransform": 1}}


def test_install_makes_nice_use_the_dropin():
    from zuko.flows import NICE

    fz.install()
    try:
        import zuko.flows

        flow = zuko.flows.NICE(4, 2, transforms=2)
        assert all(type(t) is fz.GeneralCouplingTransform for t in flow.transform.transforms)
    finally:
        fz.uninstall()
    assert zuko.flows.GeneralCouplingTransform is pc.GeneralCouplingTransform
    assert not any(type(t) is fz.GeneralCouplingTransform for t in NICE(4, 2).transform.transforms)


def test_backends_report_probes_the_dropin():
    from fastprob.compat._report import adapter_report

    rows = dict(adapter_report())
    assert rows["zuko.GeneralCouplingTransform"].startswith("zuko 1.") and "fast path" in \
        rows["zuko.GeneralCouplingTransform"], rows
