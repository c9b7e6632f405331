"""GPU check and benchmark of the Triton flow kernels, in one run (one command).

    python -m bench.bench_flows_gpu [--no-save]            # on a machine with a CUDA GPU
    TRITON_INTERPRET=1 python -m bench.bench_flows_gpu --smoke   # CPU dry run of the script

1. Checks every kernel against its PyTorch reference on the GPU (outputs and gradients;
   squeezes bit-exact) and stops if any disagrees.
2. Measures coupling forward+backward (checkerboard and channel masks) and squeeze+split:
   Triton vs PyTorch eager vs torch.compile, as time, GB/s of compulsory traffic and
   ratios, plus the device-to-device copy bandwidth measured in the same run (the
   practical peak the GB/s are compared with).
Targets (issue 4): coupling fwd+bwd >= 2x eager and >= 70% of bandwidth at (64, 12, 32, 32)
and larger; fused squeeze+split >= 3x the reshape/permute + split path.
"""
import argparse
import sys

import torch

from bench.harness import Recorder, print_header


def _time_cuda(fn, repeat=20, warmup=5):
    import statistics

    for _ in range(warmup):
        fn()
    torch.cuda.synchronize()
    ts = []
    for _ in range(repeat):
        a, b = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        a.record()
        fn()
        b.record()
        torch.cuda.synchronize()
        ts.append(a.elapsed_time(b) / 1e3)
    ts.sort()
    q = statistics.quantiles(ts, n=4)
    return {"median": statistics.median(ts), "p25": q[0], "p75": q[2]}


def _gbps(nbytes, st):
    """Throughput with its spread: the quartiles of the time give the quartiles of GB/s."""
    return {"median": nbytes / st["median"] / 1e9, "p25": nbytes / st["p75"] / 1e9, "p75": nbytes / st["p25"] / 1e9}


def _time_cpu(fn, repeat=2, warmup=1):
    from bench.harness import measure

    return measure(fn, repeat=repeat, warmup=warmup)


def check(dev, shapes):
    from fastprob.kernels.triton import coupling as tc
    from fastprob.kernels.triton import squeeze as tq
    from fastprob.reference import coupling as rc
    from fastprob.reference import squeeze as rq

    worst = 0.0
    for shape in shapes:
        B, C, H, W = shape
        for mask in ("checkerboard", "channel"):
            for scale in ("exp", "tanh", "bounded", "sigmoid"):
                for inverse in (False, True):
                    sshape = shape if mask == "checkerboard" else (B, C - C // 2, H, W)
                    x = torch.randn(shape, device=dev, requires_grad=True)
                    s = (0.5 * torch.randn(sshape, device=dev)).requires_grad_()
                    t = torch.randn(sshape, device=dev, requires_grad=True)
                    res = []
                    for f in (rc.coupling, tc.coupling_triton):
                        y, ld = f(x, s, t, mask, 1, scale, inverse=inverse)
                        g = torch.autograd.grad((y * y).sum() + ld.sum(), [x, s, t])
                        res.append([y, ld, *g])
                    for u, v in zip(*res):
                        err = float((u - v).detach().abs().max() / (v.detach().abs().max() + 1e-6))
                        worst = max(worst, err)
                        if err > 1e-4:
                            sys.exit(f"MISMATCH coupling {mask} {scale} inverse={inverse} {shape}: rel err {err:.2e}")
        x = torch.randn(shape, device=dev)
        for order in ("standard", "checkerboard"):
            if not torch.equal(tq.squeeze_triton(x, order), rq.squeeze(x, order)):
                sys.exit(f"MISMATCH squeeze {order} {shape}")
            z1, z2 = tq.squeeze_split_triton(x, order)
            r1, r2 = rq.squeeze_split(x, order)
            if not (torch.equal(z1, r1) and torch.equal(z2, r2)):
                sys.exit(f"MISMATCH squeeze_split {order} {shape}")
            if not torch.equal(tq.unsqueeze_merge_triton(z1, z2, order), x):
                sys.exit(f"MISMATCH unsqueeze_merge {order} {shape}")
    print(f"   check: all kernels match the references (worst relative error {worst:.2e}); squeezes bit-exact")


def main(argv=None):
    ap = argparse.ArgumentParser()
    ap.add_argument("--smoke", action="store_true", help="tiny shapes on CPU under TRITON_INTERPRET=1")
    ap.add_argument("--no-compile", action="store_true")
    ap.add_argument("--no-save", action="store_true")
    ap.add_argument("--shapes", default=None,
                    help="comma-separated BxCxHxW to time instead of the defaults, e.g. 256x12x128x128 "
                         "(on an H200 the defaults are small enough that ~1 ms of host overhead per "
                         "fwd+bwd step dominates; larger shapes show the kernels' own throughput)")
    ap.add_argument("--skip-check", action="store_true", help="skip the correctness check (already run)")
    a = ap.parse_args(argv)
    if not torch.cuda.is_available() and not a.smoke:
        print("no CUDA GPU here: nothing measured (run with --smoke under TRITON_INTERPRET=1 to dry-run)")
        return 0
    dev = "cuda" if torch.cuda.is_available() else "cpu"
    h = print_header("Triton flow kernels on GPU")
    timer = _time_cuda if dev == "cuda" else _time_cpu
    if not a.skip_check:
        check(dev, [(2, 3, 8, 8), (3, 5, 6, 10)] + ([(64, 12, 32, 32)] if dev == "cuda" else []))
    from fastprob.kernels.triton import coupling as tc
    from fastprob.kernels.triton import squeeze as tq
    from fastprob.reference import coupling as rc
    from fastprob.reference import squeeze as rq

    rec = Recorder("flows_gpu", h)
    shapes = [(64, 12, 32, 32), (64, 48, 16, 16), (128, 12, 64, 64), (64, 6, 128, 128)] if dev == "cuda" \
        else [(2, 4, 8, 8)]
    if a.shapes:
        shapes = [tuple(int(v) for v in sh.lower().split("x")) for sh in a.shapes.split(",")]
    # practical peak: a device-to-device copy of the largest tensor
    big = torch.empty(max(s[0] * s[1] * s[2] * s[3] for s in shapes) * 4, device=dev)
    cp = timer(lambda: big.clone())
    peak = 2 * big.numel() * 4 / cp["median"] / 1e9
    rec.add("copy (peak)", "torch.clone", "GB/s", peak, "GB/s")
    for shape in shapes:
        B, C, H, W = shape
        for mask in ("checkerboard", "channel"):
            sshape = shape if mask == "checkerboard" else (B, C - C // 2, H, W)
            x = torch.randn(shape, device=dev, requires_grad=True)
            s = (0.5 * torch.randn(sshape, device=dev)).requires_grad_()
            t = torch.randn(sshape, device=dev, requires_grad=True)
            n_x, n_s = x.numel(), s.numel()
            # compulsory traffic: fwd reads x,s,t writes y; bwd reads x,s,dy writes dx,ds,dt
            nbytes = 4 * (n_x + 2 * n_s + n_x + n_x + n_s + n_x + n_x + 2 * n_s)

            def step(f):
                y, ld = f(x, s, t, mask, 0, "tanh")
                torch.autograd.grad([y, ld], [x, s, t], [torch.ones_like(y), torch.ones_like(ld)])

            eager = timer(lambda: step(rc.coupling))
            case = f"coupling-{mask} fwd+bwd {shape}"
            rec.add(case, "torch-eager", "GB/s", _gbps(nbytes, eager), "GB/s")
            if not a.no_compile:
                comp = torch.compile(rc.coupling)
                cmp_ = timer(lambda: step(comp))
                rec.add(case, "torch.compile", "GB/s", _gbps(nbytes, cmp_), "GB/s",
                        baseline="torch-eager", ratio=eager["median"] / cmp_["median"])
            tri = timer(lambda: step(tc.coupling_triton))
            rec.add(case, "triton-fused", "GB/s", _gbps(nbytes, tri), "GB/s", baseline="torch-eager",
                    ratio=eager["median"] / tri["median"],
                    notes=f"{100 * nbytes / tri['median'] / 1e9 / peak:.0f}% of copy bandwidth")
            # forward alone, no autograd: the kernels' own throughput with the least host work
            xd, sd, td = x.detach(), s.detach(), t.detach()
            fbytes = 4 * (2 * n_x + 2 * n_s)
            with torch.no_grad():
                fe = timer(lambda: rc.coupling(xd, sd, td, mask, 0, "tanh"))
                ft = timer(lambda: tc.coupling_triton(xd, sd, td, mask, 0, "tanh"))
            case = f"coupling-{mask} fwd {shape}"
            rec.add(case, "torch-eager", "GB/s", _gbps(fbytes, fe), "GB/s")
            rec.add(case, "triton-fused", "GB/s", _gbps(fbytes, ft), "GB/s", baseline="torch-eager",
                    ratio=fe["median"] / ft["median"],
                    notes=f"{100 * fbytes / ft['median'] / 1e9 / peak:.0f}% of copy bandwidth")
        x = torch.randn(shape, device=dev)
        nbytes = 2 * 4 * x.numel()

        def ref_split():
            z = x.reshape(B, C, H // 2, 2, W // 2, 2).permute(0, 1, 3, 5, 2, 4).reshape(B, 4 * C, H // 2, W // 2)
            return z[:, : 2 * C].contiguous(), z[:, 2 * C:].contiguous()

        case = f"squeeze+split {shape}"
        base = timer(ref_split)
        rec.add(case, "reshape/permute+split", "GB/s", _gbps(nbytes, base), "GB/s")
        cb = timer(lambda: rq.squeeze_split(x, "checkerboard"))
        rec.add(case, "reference-checkerboard", "GB/s", _gbps(nbytes, cb), "GB/s",
                baseline="reshape/permute+split", ratio=base["median"] / cb["median"])
        tri = timer(lambda: tq.squeeze_split_triton(x, "checkerboard"))
        rec.add(case, "triton-fused", "GB/s", _gbps(nbytes, tri), "GB/s",
                baseline="reshape/permute+split", ratio=base["median"] / tri["median"],
                notes=f"{100 * nbytes / tri['median'] / 1e9 / peak:.0f}% of copy bandwidth")
    rec.save(not (a.no_save or a.smoke))
    return 0


if __name__ == "__main__":
    sys.exit(main())
