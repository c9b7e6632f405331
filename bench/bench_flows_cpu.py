"""CPU times of the flow blocks: PyTorch eager reference vs torch.compile, forward + backward.

    python -m bench.bench_flows_cpu [--batch 16] [--no-compile] [--no-save]

Pins torch to 2 threads.  Ops: the coupling op (both masks, tanh scale map), squeeze in
both orders, squeeze+split, ActNorm and the invertible 1x1 convolution; each timed as
one forward plus backward.  The ratio is eager time / compiled time (> 1: compile helps).
"""
import argparse
import time

import torch

from bench.harness import Recorder, measure, pin_threads, print_header
from fastprob.flows import ActNorm, InvConv1x1
from fastprob.reference import coupling as rc
from fastprob.reference import squeeze as rq


def cases(B, C, H, W):
    x = torch.randn(B, C, H, W, requires_grad=True)
    s_full = (0.5 * torch.randn(B, C, H, W)).requires_grad_()
    t_full = torch.randn(B, C, H, W, requires_grad=True)
    ct = C - C // 2
    s_half = (0.5 * torch.randn(B, ct, H, W)).requires_grad_()
    t_half = torch.randn(B, ct, H, W, requires_grad=True)
    an = ActNorm(C)
    an.initialized.fill_(True)
    conv = InvConv1x1(C, seed=0)
    yield "coupling-checkerboard-tanh", lambda: rc.coupling(x, s_full, t_full, "checkerboard", 0, "tanh"), \
        (x, s_full, t_full)
    yield "coupling-channel-tanh", lambda: rc.coupling(x, s_half, t_half, "channel", 0, "tanh"), (x, s_half, t_half)
    yield "squeeze-standard", lambda: (rq.squeeze(x, "standard"),), (x,)
    yield "squeeze-checkerboard", lambda: (rq.squeeze(x, "checkerboard"),), (x,)
    yield "squeeze-split-checkerboard", lambda: rq.squeeze_split(x, "checkerboard"), (x,)
    yield "actnorm", lambda: an(x), (x,)
    yield "invconv1x1", lambda: conv(x), (x,)


def fwd_bwd(fn, inputs):
    outs = fn()
    loss = sum(o.float().sum() for o in outs if o.requires_grad)
    torch.autograd.grad(loss, inputs)


def main(argv=None):
    ap = argparse.ArgumentParser()
    ap.add_argument("--batch", type=int, default=16)
    ap.add_argument("--shape", default="12,32,32", help="C,H,W")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--repeat", type=int, default=7)
    ap.add_argument("--no-compile", action="store_true")
    ap.add_argument("--no-save", action="store_true")
    a = ap.parse_args(argv)
    pin_threads(a.threads)
    h = print_header("flow blocks on CPU: eager reference vs torch.compile (fwd+bwd)")
    C, H, W = map(int, a.shape.split(","))
    rec = Recorder("flows_cpu", h)
    shape = f"({a.batch},{C},{H},{W})"
    for name, fn, inputs in cases(a.batch, C, H, W):
        e = measure(lambda: fwd_bwd(fn, inputs), repeat=a.repeat)
        rec.add(f"{name} {shape}", "torch-eager", "seconds", e, "s")
        if a.no_compile:
            continue
        cfn = torch.compile(fn)
        t0 = time.perf_counter()
        fwd_bwd(cfn, inputs)  # compile
        ct = time.perf_counter() - t0
        c = measure(lambda: fwd_bwd(cfn, inputs), repeat=a.repeat)
        rec.add(f"{name} {shape}", "torch.compile", "seconds", c, "s", baseline="torch-eager",
                ratio=e["median"] / c["median"], notes=f"compile {ct:.1f}s")
    rec.save(not a.no_save)


if __name__ == "__main__":
    main()
