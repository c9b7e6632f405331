"""Peer flow layers vs fastprob's drop-ins: one forward + backward per call, same run.

    python -m bench.bench_compat_flows [--device cpu|cuda] [--batch 64] [--repeat 60] [--no-save]

Each case builds the peer's layer and the drop-in with identical weights (same seed), checks
that their outputs agree, then times ``(y.sum() + logdet.sum()).backward()`` on the same
input.  Cases: nflows AffineCouplingTransform on vectors (D=64, ResidualNet) and images
(16x16x16, a 1x1 conv net, so the coupling itself is a visible share of the time),
nflows SqueezeTransform; normflows AffineCouplingBlock (Glow's coupling, 3x3-1x1-3x3
ConvNet2d) and Squeeze; and the zuko / FrEIA groups of
``bench/test_bench_compat_zuko_freia.py`` (their own batch sizes).  On CPU the drop-ins run
the PyTorch reference of the fused op (sliced views instead of gathers, no scatter into an
empty output); with ``--device cuda`` they run the Triton kernels.  On CPU, torch is
pinned to 1 thread and calls are timed by process CPU time (the shared machine's wall
times swing with other load); on CUDA by wall time after a synchronize.  Peer and drop-in
calls alternate one by one (``--repeat`` of each), so the ratio of medians compares them
under the same load.
"""
import argparse
import itertools
import time

import torch

from bench.harness import Recorder, measure_alternating, pin_threads, print_header


def _pair(make_peer, make_drop, seed=0):
    torch.manual_seed(seed)
    peer = make_peer()
    torch.manual_seed(seed)
    drop = make_drop()
    drop.load_state_dict(peer.state_dict())
    return peer, drop


def cases(B):
    import normflows as nf
    from nflows.nn import nets as nfnets
    from nflows.transforms import coupling as nfc
    from nflows.transforms import reshape as nfr
    from nflows.utils import torchutils

    from fastprob.compat import nflows as fnf
    from fastprob.compat import normflows as fnm

    D = 64
    mask = torchutils.create_mid_split_binary_mask(D)

    def resnet(i, o):
        return nfnets.ResidualNet(i, o, hidden_features=128, num_blocks=2)

    yield ("nflows.AffineCouplingTransform vec D=64", *_pair(lambda: nfc.AffineCouplingTransform(mask, resnet),
                                                             lambda: fnf.AffineCouplingTransform(mask, resnet)),
           lambda: torch.randn(B, D), "call")
    C = 16
    cmask = torchutils.create_mid_split_binary_mask(C)

    class Conv1x1(torch.nn.Module):  # nflows' transform_net signature: (x, context)
        def __init__(self, i, o):
            super().__init__()
            self.c = torch.nn.Conv2d(i, o, 1)

        def forward(self, x, context=None):
            return self.c(x)

    yield ("nflows.AffineCouplingTransform img 16x16x16 1x1conv",
           *_pair(lambda: nfc.AffineCouplingTransform(cmask, Conv1x1), lambda: fnf.AffineCouplingTransform(cmask, Conv1x1)),
           lambda: torch.randn(B, C, 16, 16), "call")
    yield ("nflows.SqueezeTransform 16x32x32", nfr.SqueezeTransform(), fnf.SqueezeTransform(),
           lambda: torch.randn(B, 16, 32, 32), "call")

    def convnet():
        return nf.nets.ConvNet2d((8, 64, 64, 16), (3, 1, 3), 0.0, False)

    from normflows.flows.affine import coupling as nmc
    from normflows.flows import reshape as nmr
    yield ("normflows.AffineCouplingBlock 16x16x16 channel sigmoid",
           *_pair(lambda: nmc.AffineCouplingBlock(convnet(), True, "sigmoid", "channel"),
                  lambda: fnm.AffineCouplingBlock(convnet(), True, "sigmoid", "channel")),
           lambda: torch.randn(B, 16, 16, 16), "call")
    yield ("normflows.Squeeze (unsqueeze) 64x16x16", nmr.Squeeze(), fnm.Squeeze(),
           lambda: torch.randn(B, 64, 16, 16), "call")


class _Calling(torch.nn.Module):
    """A zuko / FrEIA layer behind the ``layer(x) -> (y, logdet)`` call of the cases above."""

    def __init__(self, layer, run):
        super().__init__()
        self.layer, self.run = layer, run

    def forward(self, x):
        return self.run(self.layer, x)


def zuko_freia_cases():
    """The groups of ``bench/test_bench_compat_zuko_freia.py`` (imported, not repeated), with
    their batch sizes (256 vectors, 64 images)."""
    from bench import test_bench_compat_zuko_freia as zf

    for case, make in zf.CASES.items():
        peer, ours, x, run = make()
        yield (f"{case} batch {x.shape[0]}", _Calling(peer, run), _Calling(ours, run),
               lambda x=x: x.clone(), "call")


def fwd_bwd(layer, x):
    def run():
        y, ld = layer(x)
        loss = y.sum() + (ld.sum() if torch.is_tensor(ld) else 0.0)
        loss.backward()
    return run


def main(argv=None):
    ap = argparse.ArgumentParser()
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--repeat", type=int, default=60)
    ap.add_argument("--no-save", action="store_true")
    a = ap.parse_args(argv)
    if a.device == "cpu":
        pin_threads(1)
    h = print_header(f"peer flow layers vs fastprob drop-ins, forward + backward ({a.device}, batch {a.batch})")
    rec = Recorder("compat_flows", h)
    from fastprob.compat import counters, reset_counters

    for name, peer, drop, make_x, _ in itertools.chain(cases(a.batch), zuko_freia_cases()):
        peer, drop = peer.to(a.device), drop.to(a.device)
        torch.manual_seed(1)
        x = make_x().to(a.device).requires_grad_()
        with torch.no_grad():
            yp, lp = peer(x)
            reset_counters()
            yd, ld = drop(x)
        torch.testing.assert_close(yd, yp, rtol=1e-5, atol=1e-5)
        fast = sum(c["fast"] for c in counters().values())
        sync = torch.cuda.synchronize if a.device.startswith("cuda") else (lambda: None)

        def timed(layer):
            f = fwd_bwd(layer, x)

            def g():
                f()
                sync()
            return g

        clock = time.process_time if a.device == "cpu" else time.perf_counter
        metric = "fwd+bwd cpu" if a.device == "cpu" else "fwd+bwd wall"
        sp, sd = measure_alternating(timed(peer), timed(drop), a.repeat, warmup=2, clock=clock)
        rec.add(name, "peer", metric, sp, "s", notes=f"{a.device}, batch {a.batch}")
        rec.add(name, "fastprob drop-in", metric, sd, "s", baseline="peer", ratio=sp["median"] / sd["median"],
                notes=f"{a.device}, batch {a.batch}; fast path taken: {bool(fast)}; ratio = peer / drop-in")
    rec.save(not a.no_save)


if __name__ == "__main__":
    main()
