"""4x super-resolution on images: PSR flow (tau 0 and 0.8) vs bicubic vs a same-size MSE CNN.

    nice -n 10 python -m bench.bench_psr_images [--data photos] [--steps 300]

Torch pinned to 1 thread.  Data: ``photos`` (gray 32x32 crops of scikit-image's bundled
photographs shrunk 2x; train and test crops come from different photographs) or
``fashion-mnist`` when Debian's dataset-fashion-mnist is installed.  Writes
bench/psr/images_<data>.json and the grid PNG next to it; prints CPU seconds.
"""
import argparse
import json
import os
import shutil

import torch

from fastprob.models.psr_train import run

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "psr")


def main(argv=None):
    ap = argparse.ArgumentParser()
    ap.add_argument("--data", default="photos")
    ap.add_argument("--steps", type=int, default=300)
    ap.add_argument("--depth", type=int, default=2)
    ap.add_argument("--hidden", type=int, default=32)
    ap.add_argument("--batch-size", type=int, default=16)
    ap.add_argument("--lr", type=float, default=2e-3)
    ap.add_argument("--limit", type=int, default=None)
    ap.add_argument("--seed", type=int, default=0)
    a = ap.parse_args(argv)
    torch.set_num_threads(1)
    tmp = os.path.join(OUT, f"run_{a.data}")
    m = run(data=a.data, scale=4, steps=a.steps, depth=a.depth, hidden=a.hidden, batch_size=a.batch_size, lr=a.lr,
            seed=a.seed, limit=a.limit, out=tmp, progress=50)
    os.makedirs(OUT, exist_ok=True)
    with open(os.path.join(OUT, f"images_{a.data}.json"), "w") as f:
        json.dump(m, f, indent=1)
    shutil.move(os.path.join(tmp, "grid.png"), os.path.join(OUT, f"grid_{a.data}.png"))
    shutil.rmtree(tmp)
    print("| model | PSNR | SSIM | LR-PSNR | diversity |\n|---|---|---|---|---|")
    for k in ("bicubic", "cnn_mse", "psr_tau0.0", "psr_tau0.8"):
        r = m[k]
        print(f"| {k} | {r['psnr']:.2f} | {r['ssim']:.3f} | {r['lr_psnr']:.2f} | {r.get('diversity', 0):.4f} |")
    print(f"conditional bits/dim {m['psr_bits_per_dim']:.3f}; PSR params {m['psr_n_params']}, "
          f"CNN params {m['cnn_mse']['n_params']}; wall {m['wall_s']:.0f} s, CPU {m['cpu_s']:.0f} s")


if __name__ == "__main__":
    main()
