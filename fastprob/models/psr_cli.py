"""``fastprob psr train`` (image super-resolution) and ``fastprob psr student-teacher``."""
from __future__ import annotations

import json
import os


def add_commands(sub):
    pp = sub.add_parser("psr", help="probabilistic super-resolution flows").add_subparsers(dest="sub", required=True)
    t = pp.add_parser("train", help="train a conditional PSR flow; compare with bicubic and an MSE CNN")
    t.add_argument("--data", default="fashion-mnist", choices=["fashion-mnist", "digits", "photos"],
                   help="photos: gray crops of scikit-image's bundled photographs (train/test on different photos)")
    t.add_argument("--scale", type=int, default=4)
    t.add_argument("--steps", type=int, default=600)
    t.add_argument("--depth", type=int, default=3, help="flow steps per scale")
    t.add_argument("--hidden", type=int, default=32)
    t.add_argument("--batch-size", type=int, default=32)
    t.add_argument("--lr", type=float, default=1e-3)
    t.add_argument("--downsampling", choices=["avg", "nearest"], default="avg")
    t.add_argument("--crop", type=int, default=32, help="crop size for --data photos")
    t.add_argument("--limit", type=int, default=None, help="use only this many training images")
    t.add_argument("--seed", type=int, default=0)
    t.add_argument("--device", default="auto", help="auto (the CUDA GPU when present), cpu, cuda, cuda:N")
    t.add_argument("--out", default="runs/psr")
    t.set_defaults(fn=cmd_train)
    s = pp.add_parser("student-teacher", help="thesis table 11: PSR student vs GP and MC dropout on 2-D teachers")
    s.add_argument("--cases", default="circle-cluster,two-moons,four-circles,abs")
    s.add_argument("--seeds", default="0")
    s.add_argument("--steps", type=int, default=500)
    s.add_argument("--n-train", type=int, default=5000, help="teacher pairs to train on")
    s.add_argument("--n-test", type=int, default=600, help="teacher pairs to test on (EMD set size)")
    s.add_argument("--out", default="runs/psr-student-teacher")
    s.set_defaults(fn=cmd_student_teacher)


def cmd_train(a):
    from .psr_nets import check_scale
    from .psr_train import run

    try:
        check_scale(a.scale)
    except ValueError as exc:
        raise SystemExit(f"fastprob psr train: {exc}")
    try:
        m = run(data=a.data, scale=a.scale, steps=a.steps, depth=a.depth, hidden=a.hidden, batch_size=a.batch_size,
                lr=a.lr, seed=a.seed, limit=a.limit, downsampling=a.downsampling, out=a.out, crop=a.crop,
                device=a.device)
    except (FileNotFoundError, ValueError) as exc:  # missing data set, image size not divisible by the scale
        raise SystemExit(f"fastprob psr train: {exc}")
    for k in ("bicubic", "cnn_mse", "psr_tau0.0", "psr_tau0.8"):
        r = m[k]
        extra = f"  diversity {r['diversity']:.4f}" if "diversity" in r else ""
        print(f"{k:>12}: PSNR {r['psnr']:.2f} dB  SSIM {r['ssim']:.3f}  LR-PSNR {r['lr_psnr']:.2f}{extra}")
    print(f"conditional bits/dim {m['psr_bits_per_dim']:.3f}; wrote {a.out}/metrics.json, grid.png")


def cmd_student_teacher(a):
    import torch

    from .student_teacher import format_table, run_all

    torch.set_num_threads(1)
    seeds = tuple(int(s) for s in a.seeds.split(","))
    results, summary = run_all(tuple(a.cases.split(",")), seeds, steps=a.steps, n_train=a.n_train,
                               n_test=a.n_test)
    os.makedirs(a.out, exist_ok=True)
    with open(os.path.join(a.out, "results.json"), "w") as f:
        json.dump({"summary": summary, "results": results}, f, indent=1)
    print(format_table(summary))
    for c, s in summary.items():
        print(f"{c}: corr(student, teacher log p(y|x)) = {s['loglik_corr']['teacher_samples']:.3f} "
              f"(teacher samples), {s['loglik_corr']['student_samples']:.3f} (student samples)")
    print(f"wrote {a.out}/results.json")
