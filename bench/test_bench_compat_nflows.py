"""nflows' and normflows' layers vs fastprob's drop-ins as pytest-benchmark groups.

The cases are those of ``bench/bench_compat_flows.py`` (imported, not repeated): each group
holds the peer's layer (the anchor) and the drop-in with identical weights, checks that
their outputs agree, then times forward + backward (batch 64, float32, CPU; on CPU the
drop-ins run the PyTorch reference of the fused op).

Run: ``pytest bench/test_bench_compat_nflows.py --benchmark-only --benchmark-group-by=group``.
"""
import pytest
import torch

from bench import suite

BATCH = 64
CASES = ["nflows.AffineCouplingTransform vec D=64", "nflows.AffineCouplingTransform img 16x16x16 1x1conv",
         "nflows.SqueezeTransform 16x32x32", "normflows.AffineCouplingBlock 16x16x16 channel sigmoid",
         "normflows.Squeeze (unsqueeze) 64x16x16"]


def _case(name):
    pytest.importorskip("nflows", reason="nflows is not installed (pip install 'fastprob[compat]')")
    pytest.importorskip("normflows", reason="normflows is not installed (pip install 'fastprob[compat]')")
    from bench.bench_compat_flows import cases

    found = {n: (peer, drop, make_x) for n, peer, drop, make_x, _ in cases(BATCH)}
    assert set(found) == set(CASES), "bench_compat_flows.cases() changed: update CASES"
    return found[name]


@pytest.mark.parametrize("case", CASES)
@pytest.mark.parametrize("impl", ["fastprob", "peer"])
def test_compat_peer_layer(benchmark, case, impl):
    from bench.bench_compat_flows import fwd_bwd
    from fastprob.compat import counters, reset_counters

    peer, drop, make_x = _case(case)
    torch.manual_seed(1)
    x = make_x().requires_grad_()
    with torch.no_grad():
        yp, _ = peer(x)
        reset_counters()
        yd, _ = drop(x)
    torch.testing.assert_close(yd, yp, rtol=1e-5, atol=1e-5)
    assert sum(c["fast"] for c in counters().values()) >= 1, "the drop-in fell back to the peer's code"
    layer = drop if impl == "fastprob" else peer
    sizes = suite.sizes()
    suite.run(benchmark, f"{case} fwd+bwd", impl, fwd_bwd(layer, x), anchor=impl == "peer",
              rounds=sizes["flow_rounds"], iterations=max(1, sizes["flow_iters"] // 2))
