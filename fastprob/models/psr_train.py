"""Train and evaluate a conditional PSR flow on an image set, with bicubic and a same-size
MSE CNN as baselines (``fastprob psr train``)."""
from __future__ import annotations

import json
import os
import time

import numpy as np
import torch
import torch.nn.functional as F

from .. import metrics
from .psr import ConditionalPSR
from .psr_nets import SRCNN, downsample

PHOTOS_TRAIN = ("camera", "astronaut", "coffee", "chelsea", "rocket", "brick", "grass", "gravel", "retina")
PHOTOS_TEST = ("coins", "moon", "hubble_deep_field", "immunohistochemistry")


def load_photo_crops(crop=32, reduce=2, n_train=2000, n_test=256, seed=0):
    """Gray 8-bit crops of scikit-image's bundled photographs, each photo first shrunk by
    ``reduce`` (block average): train crops come from PHOTOS_TRAIN, test crops from the other
    photos PHOTOS_TEST.  Returns (train, test, 256) as (N, 1, crop, crop) int64 tensors."""
    try:
        import skimage.data as skd
    except ImportError as exc:
        raise ImportError("the photo crops need scikit-image: pip install 'fastprob[psr]'") from exc
    rng = np.random.default_rng(seed)

    def crops(names, n):
        imgs = []
        for name in names:
            im = np.asarray(getattr(skd, name)(), dtype=np.float64)
            if im.ndim == 3:
                im = im[..., :3] @ np.array([0.299, 0.587, 0.114])
            if im.max() <= 1.0:
                im = im * 255
            h, w = (im.shape[0] // reduce) * reduce, (im.shape[1] // reduce) * reduce
            im = im[:h, :w].reshape(h // reduce, reduce, w // reduce, reduce).mean((1, 3))
            imgs.append(im)
        out = np.empty((n, 1, crop, crop))
        for k in range(n):
            im = imgs[k % len(imgs)]
            i, j = rng.integers(0, im.shape[0] - crop + 1), rng.integers(0, im.shape[1] - crop + 1)
            out[k, 0] = im[i:i + crop, j:j + crop]
        return torch.from_numpy(np.clip(np.round(out), 0, 255).astype(np.int64))

    return crops(PHOTOS_TRAIN, n_train), crops(PHOTOS_TEST, n_test), 256


def load_sr_data(name, seed=0, limit=None, crop=32):
    if name == "photos":
        tr, te, nb = load_photo_crops(crop=crop, seed=seed)
    else:
        from ..flows.data import load_images

        tr, te, nb = load_images(name, seed=seed)
    if limit:
        tr, te = tr[:limit], te[:max(limit // 8, 16)]
    return tr, te, nb


def resolve_device(device="auto"):
    """"auto" -> the CUDA GPU when torch sees one, else the CPU; anything else as given."""
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    dev = torch.device(device)
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"device {device!r} asked for, but torch sees no CUDA GPU; use --device cpu")
    return dev


def train_psr(train_pix, n_bins, scale=4, depth=3, hidden=32, steps=600, batch_size=32, lr=1e-3, seed=0,
              downsampling="avg", progress=None, device="cpu"):
    """Maximum likelihood of dequantized y = (pixel + u) / n_bins given x = pi(y).

    The training images move to ``device`` once (as uint8 when they fit, to keep GPU memory
    small); batches are drawn and dequantized there."""
    dev = resolve_device(device)
    torch.manual_seed(seed)
    model = ConditionalPSR(tuple(train_pix.shape[1:]), scale, depth=depth, hidden=hidden, downsampling=downsampling,
                           seed=seed).to(dev)
    if n_bins <= 256:
        train_pix = train_pix.to(torch.uint8)
    train_pix = train_pix.to(dev)
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, steps)
    model.train()
    hist = []
    for step in range(steps):
        idx = torch.randint(0, train_pix.shape[0], (batch_size,), device=dev)
        y = (train_pix[idx].float() + torch.rand(batch_size, *train_pix.shape[1:], device=dev)) / n_bins
        loss = model.bits_per_dim(y, n_bins=n_bins).mean()
        if not torch.isfinite(loss):
            raise FloatingPointError(f"non-finite loss at step {step}; lower the learning rate")
        opt.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 50.0)
        opt.step()
        sched.step()
        hist.append(float(loss.detach()))
        if progress and (step + 1) % progress == 0:
            print(f"  psr step {step + 1}/{steps}: train bits/dim {np.mean(hist[-progress:]):.3f}", flush=True)
    return model.eval(), hist


def train_cnn(train_pix, n_bins, scale=4, steps=600, batch_size=32, lr=1e-3, seed=0, downsampling="avg",
              n_params=None, device="cpu"):
    """Deterministic SR CNN trained with MSE; its width is chosen so that its parameter count
    is close to ``n_params`` (the PSR flow's)."""
    torch.manual_seed(seed)
    C = train_pix.shape[1]
    width = 32
    if n_params:
        best = min(range(8, 257, 4), key=lambda w: abs(sum(p.numel() for p in SRCNN(C, scale, w, w, w // 2)
                                                         .parameters()) - n_params))
        width = best
    dev = resolve_device(device)
    net = SRCNN(C, scale, width, width, width // 2).to(dev)
    if n_bins <= 256:
        train_pix = train_pix.to(torch.uint8)
    train_pix = train_pix.to(dev)
    opt = torch.optim.Adam(net.parameters(), lr=lr)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, steps)
    for _ in range(steps):
        idx = torch.randint(0, train_pix.shape[0], (batch_size,), device=dev)
        y = (train_pix[idx].float() + 0.5) / n_bins
        loss = F.mse_loss(net(downsample(y, scale, downsampling)), y)
        opt.zero_grad()
        loss.backward()
        opt.step()
        sched.step()
    return net.eval()


def _image_metrics(sr, y, x, scale, mode):
    sr = sr.clamp(0, 1)
    return {"psnr": float(metrics.psnr(sr, y).mean()), "ssim": float(metrics.ssim(sr, y).mean()),
            "lr_psnr": float(metrics.lr_psnr(sr, x, scale, mode).mean())}


@torch.no_grad()
def evaluate(model, cnn, test_pix, n_bins, taus=(0.0, 0.8), n_samples=4, seed=0):
    """PSNR / SSIM / LR-PSNR (means over test images) for bicubic, the CNN and the PSR flow at
    each tau (first sample), diversity over ``n_samples`` samples, and the conditional
    bits/dim of the flow on the test set (uniform dequantization, seeded)."""
    torch.manual_seed(seed)
    scale, mode = model.scale, model.downsampling
    dev = next(model.parameters()).device
    test_pix = test_pix.to(dev)
    y = (test_pix.float() + 0.5) / n_bins
    x = downsample(y, scale, mode)
    out = {"bicubic": _image_metrics(F.interpolate(x, scale_factor=scale, mode="bicubic", align_corners=False),
                                     y, x, scale, mode)}
    if cnn is not None:
        out["cnn_mse"] = _image_metrics(cnn(x), y, x, scale, mode)
        out["cnn_mse"]["n_params"] = sum(p.numel() for p in cnn.parameters())
    for tau in taus:
        s = torch.cat([model.sample(x[i:i + 64], tau, n_samples) for i in range(0, x.shape[0], 64)], 1)
        r = _image_metrics(s[0], y, x, scale, mode)
        r["diversity"] = float(metrics.diversity(s.clamp(0, 1)).mean())
        out[f"psr_tau{tau}"] = r
    yq = (test_pix.float() + torch.rand(test_pix.shape, device=dev)) / n_bins
    bpd = torch.cat([model.bits_per_dim(yq[i:i + 64], n_bins=n_bins) for i in range(0, yq.shape[0], 64)])
    out["psr_bits_per_dim"] = float(bpd.mean())
    out["psr_n_params"] = sum(p.numel() for p in model.parameters())
    return out


@torch.no_grad()
def save_grid(model, test_pix, n_bins, path, taus=(0.0, 0.5, 0.8, 1.0), n=6, seed=0):
    """PNG grid, one row per test image: LR | bicubic | samples at each tau | HR."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    torch.manual_seed(seed)
    y = (test_pix[:n].float() + 0.5) / n_bins
    y = y.to(next(model.parameters()).device)
    x = downsample(y, model.scale, model.downsampling)
    cols = [("LR", F.interpolate(x, scale_factor=model.scale, mode="nearest")),
            ("bicubic", F.interpolate(x, scale_factor=model.scale, mode="bicubic", align_corners=False))]
    cols += [(f"tau={t}", model.sample(x, t, 1)[0]) for t in taus]
    cols.append(("HR", y))
    fig, axes = plt.subplots(n, len(cols), figsize=(1.2 * len(cols), 1.2 * n), squeeze=False)
    for j, (title, imgs) in enumerate(cols):
        for i in range(n):
            img = imgs[i].clamp(0, 1).permute(1, 2, 0).squeeze(-1).cpu().numpy()
            axes[i, j].imshow(img, cmap="gray" if img.ndim == 2 else None, vmin=0, vmax=1)
            axes[i, j].set_xticks([])
            axes[i, j].set_yticks([])
        axes[0, j].set_title(title, fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def run(data="fashion-mnist", scale=4, steps=600, cnn_steps=None, depth=3, hidden=32, batch_size=32, lr=1e-3,
        seed=0, limit=None, downsampling="avg", out="runs/psr", crop=32, progress=100, device="auto"):
    """Train PSR + CNN, evaluate, write OUT/metrics.json and OUT/grid.png; returns metrics."""
    dev = resolve_device(device)
    torch.manual_seed(seed)
    t0, c0 = time.perf_counter(), time.process_time()
    tr, te, nb = load_sr_data(data, seed, limit, crop)
    model, hist = train_psr(tr, nb, scale, depth, hidden, steps, batch_size, lr, seed, downsampling, progress, dev)
    t_psr = time.perf_counter() - t0
    n_params = sum(p.numel() for p in model.parameters())
    cnn = train_cnn(tr, nb, scale, cnn_steps or steps, batch_size, lr, seed, downsampling, n_params, dev)
    m = evaluate(model, cnn, te, nb, seed=seed)
    os.makedirs(out, exist_ok=True)
    save_grid(model, te, nb, os.path.join(out, "grid.png"), seed=seed)
    m.update(config=dict(data=data, scale=scale, steps=steps, depth=depth, hidden=hidden, batch_size=batch_size,
                         lr=lr, seed=seed, downsampling=downsampling, train_images=int(tr.shape[0]),
                         test_images=int(te.shape[0]), shape=list(tr.shape[1:])),
             train_bpd_last100=float(np.mean(hist[-100:])), wall_s=time.perf_counter() - t0, psr_train_wall_s=t_psr,
             device=str(dev) + (f" ({torch.cuda.get_device_name(dev)})" if dev.type == "cuda" else ""),
             cpu_s=time.process_time() - c0)
    with open(os.path.join(out, "metrics.json"), "w") as f:
        json.dump(m, f, indent=1)
    return m
