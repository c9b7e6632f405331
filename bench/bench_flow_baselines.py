"""Bits/dim of simple baselines on the digits test split, the bar a trained flow must clear.

    python -m bench.bench_flow_baselines [--epochs 3]

* uniform density on [0, 1]^64 with uniform dequantization: log2(17);
* independent per-pixel Gaussian fitted to dequantized training pixels;
* independent per-pixel 17-level histogram (add-one smoothing), i.e. the best model
  without pixel dependencies; its bits/dim equal those of its piecewise-constant density;
* with ``--epochs N``: the RealNVP of tests/test_flow_training.py trained N epochs.
Same split and conventions as ``fastprob flows train --data digits``.
"""
import argparse
import math
import tempfile

import torch

from fastprob.flows.data import load_images


def baselines(seed=0):
    tr, te, n_bins = load_images("digits", seed=seed)
    xtr, xte = tr.flatten(1), te.flatten(1)
    D = xte.shape[1]
    g = torch.Generator().manual_seed(seed)
    deq = lambda p: (p.double() + torch.rand(p.shape, generator=g, dtype=torch.float64)) / n_bins  # noqa: E731
    a, b = deq(xtr), deq(xte)
    lp = torch.distributions.Normal(a.mean(0), a.std(0)).log_prob(b).sum(1)
    gauss = float((-(lp - D * math.log(n_bins)) / (D * math.log(2))).mean())
    counts = torch.stack([torch.bincount(xtr[:, j], minlength=n_bins) for j in range(D)]).double() + 1
    p = counts / counts.sum(1, keepdim=True)
    hist = float(-torch.log2(p[torch.arange(D), xte]).sum(1).mean() / D)
    return {"uniform": math.log2(n_bins), "independent Gaussian": gauss, "independent histogram": hist}


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--epochs", type=int, default=0)
    a = ap.parse_args()
    torch.set_num_threads(1)
    for name, v in baselines().items():
        print(f"{name:24s} {v:.3f} bits/dim")
    if a.epochs:
        from fastprob.flows.train import train

        torch.manual_seed(0)
        with tempfile.TemporaryDirectory() as out:
            _, m = train(model="realnvp", epochs=a.epochs, hidden=32, depth=2, lr=3e-3, out=out, progress=False)
        print(f"{'RealNVP, ' + str(a.epochs) + ' epochs':24s} {m['test_bpd']:.3f} bits/dim")


if __name__ == "__main__":
    main()
