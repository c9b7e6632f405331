"""zuko's and FrEIA's coupling layers vs fastprob's drop-ins, forward + backward, same inputs.

Each group holds the peer's layer (the anchor) and the drop-in with identical weights, checks
their outputs agree, then times: forward (with log-determinant), sum, backward to the inputs
and parameters.  Batch 256, float32, the device of ``FASTPROB_BENCH_DEVICE`` (default cpu).
On the CPU the drop-ins run the PyTorch reference of the fused op (what is saved is zuko's
gathers / scatters and FrEIA's slices + concatenation); on CUDA the Triton kernel.

Groups:
* ``zuko-coupling D=64``: zuko's ``GeneralCouplingTransform(64)`` (checkered mask, the
  NICE / RealNVP default: the drop-in's ``pairs`` geometry), its default MLP;
* ``zuko-coupling D=64 random mask``: a random half mask (the ``gather`` geometry);
* ``freia-glow vec D=64``: ``GLOWCouplingBlock`` with a one-hidden-layer MLP subnet;
* ``freia-glow img 16x16x16``: ``GLOWCouplingBlock`` with a 1x1-conv subnet, so the coupling
  itself is a visible share of the time.

Run: ``pytest bench/test_bench_compat_zuko_freia.py --benchmark-only --benchmark-group-by=group``;
on a GPU ``bash bench/run_gpu_checks.sh OUTDIR compat`` (wall time, synchronized).
"""
import os

import pytest
import torch

from bench import suite

BATCH = 256


def _dev():
    return torch.device(os.environ.get("FASTPROB_BENCH_DEVICE", "cpu"))


def _fwd_bwd(run, x, params):
    y, ld = run()
    return torch.autograd.grad(y.sum() + ld.sum(), (x, *params))


def _zuko(mask):
    pytest.importorskip("zuko", reason="zuko is not installed (pip install 'fastprob[compat]')")
    from zuko.flows import coupling as pc

    from fastprob.compat import zuko as fz

    torch.manual_seed(0)
    peer = pc.GeneralCouplingTransform(64, 0, mask)
    ours = fz.GeneralCouplingTransform(64, 0, mask)
    ours.load_state_dict(peer.state_dict())
    x = torch.randn(BATCH, 64)
    return peer, ours, x, lambda lazy, v: lazy().call_and_ladj(v)


def _freia(image):
    pytest.importorskip("FrEIA", reason="FrEIA is not installed (pip install 'fastprob[compat]')")
    import FrEIA.modules as Fm

    from fastprob.compat import freia as ff

    if image:
        dims = (16, 16, 16)

        def sub(i, o):
            return torch.nn.Conv2d(i, o, 1)
    else:
        dims = (64,)

        def sub(i, o):
            return torch.nn.Sequential(torch.nn.Linear(i, 128), torch.nn.ReLU(), torch.nn.Linear(128, o))
    torch.manual_seed(0)
    peer = Fm.GLOWCouplingBlock([dims], subnet_constructor=sub)
    ours = ff.GLOWCouplingBlock([dims], subnet_constructor=sub)
    ours.load_state_dict(peer.state_dict())
    x = torch.randn(BATCH if not image else 64, *dims)

    def run(block, v):
        (y,), j = block([v])
        return y, j
    return peer, ours, x, run


CASES = {
    "zuko-coupling D=64": lambda: _zuko(None),
    "zuko-coupling D=64 random mask": lambda: _zuko(torch.randperm(64, generator=torch.Generator().manual_seed(1)) % 2
                                                    == 0),
    "freia-glow vec D=64": lambda: _freia(False),
    "freia-glow img 16x16x16": lambda: _freia(True),
}


@pytest.mark.parametrize("case", list(CASES))
@pytest.mark.parametrize("impl", ["fastprob", "peer"])
def test_compat_layer(benchmark, case, impl):
    from fastprob.compat import counters, reset_counters

    peer, ours, x, run = CASES[case]()
    d = _dev()
    peer, ours, x = peer.to(d), ours.to(d), x.to(d).requires_grad_()
    with torch.no_grad():
        y0, l0 = run(peer, x)
        reset_counters()
        y1, l1 = run(ours, x)
    torch.testing.assert_close(y1, y0, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(l1, l0, rtol=1e-5, atol=1e-4)
    assert all(c["fallback"] == 0 and c["fast"] == 1 for c in counters().values())
    layer = ours if impl == "fastprob" else peer
    params = tuple(layer.parameters())
    sizes = suite.sizes()
    # on CUDA wait for the kernels (with --benchmark-timer=time.perf_counter, as
    # bench/run_gpu_checks.sh runs it); on the CPU the call is synchronous already
    sync = torch.cuda.synchronize if d.type == "cuda" else (lambda: None)

    def step():
        out = _fwd_bwd(lambda: run(layer, x), x, params)
        sync()
        return out
    suite.run(benchmark, f"{case} fwd+bwd", impl, step,
              anchor=impl == "peer", rounds=sizes["flow_rounds"], iterations=max(1, sizes["flow_iters"] // 2))
