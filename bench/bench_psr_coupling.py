"""Conditional coupling (bounded scale map exp(2 tanh(s/2))) forward + backward: the fused
coupling op vs an unfused PyTorch version, on CPU now and on CUDA when present.

    nice -n 10 python -m bench.bench_psr_coupling [--device cpu|cuda] [--batch 16] [--no-save]
    python -m bench.bench_psr_coupling --device cuda    # on a CUDA machine: Triton vs eager vs compile

Two levels are timed, each as one forward plus backward:
* ``op``: the coupling arithmetic alone for given (x, s, t): ``fastprob.flows.ops.coupling``
  (the Triton kernel on CUDA, the plain reference on CPU) vs the unfused expression below
  (mask multiplies, separate exp/tanh, separate log-det reduction), plus torch.compile of
  the unfused expression on CUDA;
* ``layer``: a whole :class:`ConditionalCoupling` (context network + op) with the fused op
  vs the same layer with the unfused arithmetic.
Results go to bench/results.csv with the ratio unfused / fused (> 1: the fused op is faster).
"""
import argparse
import statistics
import time

import torch

from bench.harness import Recorder, measure, pin_threads, print_header
from fastprob.flows import ops
from fastprob.flows.conditional import ConditionalCoupling
from fastprob.reference.masks import checkerboard


def unfused_coupling(x, s, t, parity):
    """Checkerboard affine coupling, bounded scale, written as separate PyTorch ops."""
    b = checkerboard(x.shape[2], x.shape[3], parity, device=x.device, dtype=x.dtype)
    g = 2.0 * torch.tanh(s / 2.0)
    gm = g * b
    z = (1 - b) * x + b * (x * torch.exp(g) + t)
    return z, gm.flatten(1).sum(1)


def _time(fn, device, repeat):
    if device != "cuda":
        return measure(fn, repeat=repeat)
    for _ in range(3):
        fn()
    torch.cuda.synchronize()
    ts = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        torch.cuda.synchronize()
        ts.append(time.perf_counter() - t0)
    q = statistics.quantiles(ts, n=4)
    return {"median": statistics.median(ts), "p25": q[0], "p75": q[2], "min": min(ts)}


def main(argv=None):
    ap = argparse.ArgumentParser()
    ap.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    ap.add_argument("--batch", type=int, default=16)
    ap.add_argument("--shape", default="2,32,32", help="C,H,W of the coupled tensor")
    ap.add_argument("--context", type=int, default=16, help="context channels")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--repeat", type=int, default=15)
    ap.add_argument("--no-save", action="store_true")
    a = ap.parse_args(argv)
    if a.device == "cuda" and not torch.cuda.is_available():
        raise SystemExit("--device cuda: no CUDA device here; run with --device cpu")
    pin_threads(a.threads)
    dev = torch.device(a.device)
    h = print_header(f"conditional coupling fwd+bwd on {a.device}: fused op vs unfused PyTorch")
    rec = Recorder("psr_coupling", h)
    C, H, W = map(int, a.shape.split(","))
    B = a.batch
    torch.manual_seed(0)
    x = torch.randn(B, C, H, W, device=dev, requires_grad=True)
    s = (0.5 * torch.randn(B, C, H, W, device=dev)).requires_grad_()
    t = torch.randn(B, C, H, W, device=dev, requires_grad=True)
    shape = f"({B},{C},{H},{W})"

    def fb(fn, inputs):
        z, ld = fn()
        torch.autograd.grad(z.sum() + ld.sum(), inputs)

    # correctness first: both paths must agree
    zf, lf = ops.coupling(x, s, t, "checkerboard", 0, "bounded")
    zu, lu = unfused_coupling(x, s, t, 0)
    torch.testing.assert_close(zf, zu, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(lf, lu, rtol=1e-4, atol=1e-3)
    fused = _time(lambda: fb(lambda: ops.coupling(x, s, t, "checkerboard", 0, "bounded"), (x, s, t)), a.device,
                  a.repeat)
    unf = _time(lambda: fb(lambda: unfused_coupling(x, s, t, 0), (x, s, t)), a.device, a.repeat)
    which = "triton" if a.device == "cuda" else "reference"
    rec.add(f"op checkerboard bounded {shape}", "torch-unfused", "seconds", unf, "s")
    rec.add(f"op checkerboard bounded {shape}", f"fused-op ({which})", "seconds", fused, "s",
            baseline="torch-unfused", ratio=unf["median"] / fused["median"])
    if a.device == "cuda":
        cu = torch.compile(unfused_coupling)
        comp = _time(lambda: fb(lambda: cu(x, s, t, 0), (x, s, t)), a.device, a.repeat)
        rec.add(f"op checkerboard bounded {shape}", "torch.compile(unfused)", "seconds", comp, "s",
                baseline="torch-unfused", ratio=unf["median"] / comp["median"])

    layer = ConditionalCoupling(C, a.context, "checkerboard", 0, hidden=32).to(dev)
    with torch.no_grad():
        layer.net.net[-1].weight.normal_(0, 0.01)
    ctx = torch.randn(B, a.context, H, W, device=dev)

    def layer_unfused():
        sp, tp = layer._params(x, ctx)
        return unfused_coupling(x, sp, tp, 0)

    params = [x] + list(layer.parameters())
    lf = _time(lambda: fb(lambda: layer(x, ctx), params), a.device, a.repeat)
    lu = _time(lambda: fb(layer_unfused, params), a.device, a.repeat)
    rec.add(f"layer ConditionalCoupling {shape} ctx {a.context}", "torch-unfused", "seconds", lu, "s")
    rec.add(f"layer ConditionalCoupling {shape} ctx {a.context}", f"fused-op ({which})", "seconds", lf, "s",
            baseline="torch-unfused", ratio=lu["median"] / lf["median"])
    rec.save(not a.no_save)


if __name__ == "__main__":
    main()
