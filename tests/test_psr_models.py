"""PSR models, metrics and the student-teacher pieces against independent oracles."""
import itertools
import math

import numpy as np
import pytest
import torch

from fastprob import metrics
from fastprob.models.psr import ConditionalPSR, JointPSR
from fastprob.models.psr_nets import downsample
from fastprob.models.student_teacher import ConditionalVectorFlow, emd
from fastprob.models.toy_teachers import TEACHERS, make_teacher


def _randomize(m, scale=0.3, seed=0):
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in m.parameters():
            p.add_(scale * torch.randn(p.shape, generator=g, dtype=p.dtype))
    return m


def test_conditional_density_integrates_to_one_on_a_grid():
    torch.manual_seed(0)
    m = _randomize(ConditionalVectorFlow(2, 1, depth=3, hidden=16, embed=4), 0.15).double().eval()
    g = torch.linspace(-10, 10, 401, dtype=torch.float64)
    yy = torch.stack(torch.meshgrid(g, g, indexing="ij"), -1).reshape(-1, 2)
    h = float(g[1] - g[0])
    for xv in (-1.0, 0.0, 2.5):
        x = torch.full((yy.shape[0], 1), xv, dtype=torch.float64)
        with torch.no_grad():
            p = torch.exp(m.log_prob(yy, x))
        assert abs(float(p.sum()) * h * h - 1) < 1e-4


def test_psr_flow_inverse_and_logdet_vs_jacobian():
    """The whole conditional image flow (tiny) against the autograd Jacobian in float64."""
    torch.manual_seed(0)
    m = _randomize(ConditionalPSR((2, 4, 4), 2, depth=1, hidden=4, features=4, context_channels=2), 0.2)
    m = m.double().eval()
    y = torch.rand(1, 2, 4, 4, dtype=torch.float64) * 0.8 + 0.1
    ctx = m.contexts(m.lr(y))
    z, ld = m.flow(y, ctx)
    yb, _ = m.flow.inverse(z, ctx)
    torch.testing.assert_close(yb, y, rtol=1e-8, atol=1e-9)
    J = torch.autograd.functional.jacobian(lambda v: m.flow(v.view(1, 2, 4, 4), ctx)[0].reshape(-1), y.reshape(-1))
    torch.testing.assert_close(ld[0], torch.linalg.slogdet(J)[1], rtol=1e-8, atol=1e-8)


def test_psr_sampling_and_joint_shapes():
    torch.manual_seed(0)
    j = JointPSR((1, 8, 8), 4, depth=1, hidden=8, features=4, context_channels=2, prior_depth=1, prior_hidden=4)
    y = torch.rand(3, 1, 8, 8)
    bx, by = j.bits_per_dim(y)
    assert bx.shape == by.shape == (3,) and torch.isfinite(bx).all() and torch.isfinite(by).all()
    x, ys = j.sample(2, tau_x=0.5, tau_y=0.0)
    assert x.shape == (2, 1, 2, 2) and ys.shape == (2, 1, 8, 8)
    s = j.conditional.sample(j.lr(y), tau=0.8, n=4)
    assert s.shape == (4, 3, 1, 8, 8)


@pytest.mark.parametrize("kw,match", [(dict(scale=3), "power of 2"), (dict(scale=6), "power of 2"),
                                      (dict(in_shape=(1, 12, 10), scale=4), "not divisible"),
                                      (dict(downsampling="bicubic"), "downsampling")])
def test_psr_bad_construction(kw, match):
    args = dict(in_shape=(1, 8, 8), scale=2, depth=1, hidden=4)
    args.update(kw)
    with pytest.raises(ValueError, match=match):
        ConditionalPSR(**args)


def test_psr_bad_inputs():
    m = ConditionalPSR((1, 8, 8), 2, depth=1, hidden=4)
    y = torch.rand(2, 1, 8, 8)
    y[0, 0, 1, 1] = float("nan")
    with pytest.raises(ValueError, match="NaN"):
        m.log_prob(y)
    with pytest.raises(ValueError, match="LR images"):
        m.sample(torch.rand(2, 1, 3, 3))
    with pytest.raises(ValueError, match="not divisible"):
        downsample(torch.rand(1, 1, 6, 6), 4)


def test_downsample_against_loops():
    y = torch.rand(2, 3, 8, 12, dtype=torch.float64)
    avg, near = downsample(y, 4, "avg"), downsample(y, 4, "nearest")
    for b, c, i, j in itertools.product(range(2), range(3), range(2), range(3)):
        assert abs(float(avg[b, c, i, j]) - float(y[b, c, 4 * i:4 * i + 4, 4 * j:4 * j + 4].mean())) < 1e-12
        assert float(near[b, c, i, j]) == float(y[b, c, 4 * i, 4 * j])


def test_psnr_ssim_against_scikit_image():
    sk = pytest.importorskip("skimage.metrics")
    torch.manual_seed(0)
    a = torch.rand(3, 2, 12, 15, dtype=torch.float64)
    b = (a + 0.1 * torch.randn_like(a)).clamp(0, 1)
    ours_s, ours_p = metrics.ssim(b, a), metrics.psnr(b, a)
    for i in range(3):
        ref = sk.structural_similarity(b[i].numpy(), a[i].numpy(), channel_axis=0, data_range=1.0)
        assert abs(float(ours_s[i]) - ref) < 1e-10
        assert abs(float(ours_p[i]) - sk.peak_signal_noise_ratio(a[i].numpy(), b[i].numpy(), data_range=1.0)) < 1e-10
    with pytest.raises(ValueError, match="same shape"):
        metrics.psnr(a, b[:, :1])
    with pytest.raises(ValueError, match="NaN"):
        metrics.psnr(a * float("nan"), b)


def test_diversity_lr_psnr_bpd_against_loops():
    torch.manual_seed(1)
    s = torch.rand(4, 2, 1, 4, 4, dtype=torch.float64)
    div = metrics.diversity(s)
    for b in range(2):
        vals = []
        for i, j in itertools.product(range(4), range(4)):
            v = [float(s[k, b, 0, i, j]) for k in range(4)]
            mu = sum(v) / 4
            vals.append(math.sqrt(sum((t - mu) ** 2 for t in v) / 4))
        assert abs(float(div[b]) - sum(vals) / len(vals)) < 1e-12
    sr = torch.rand(2, 1, 8, 8, dtype=torch.float64)
    x = torch.rand(2, 1, 4, 4, dtype=torch.float64)
    lp = metrics.lr_psnr(sr, x, 2)
    for b in range(2):
        mse = sum((float(sr[b, 0, 2 * i:2 * i + 2, 2 * j:2 * j + 2].mean()) - float(x[b, 0, i, j])) ** 2
                  for i in range(4) for j in range(4)) / 16
        assert abs(float(lp[b]) - 10 * math.log10(1 / mse)) < 1e-9
    # bits/dim of a uniform density on [0, 1]^D of 8-bit data: exactly 8 bits
    assert abs(float(metrics.bits_per_dim(torch.tensor(0.0), 10, 256)) - 8.0) < 1e-12
    with pytest.raises(ValueError, match="S >= 2"):
        metrics.diversity(s[:1])


def test_emd_equals_brute_force_assignment():
    rng = np.random.default_rng(0)
    for n in (1, 3, 5, 6):
        a, b = rng.normal(size=(n, 2)), rng.normal(size=(n, 2))
        best = min(np.mean([np.linalg.norm(a[i] - b[p[i]]) for i in range(n)])
                   for p in itertools.permutations(range(n)))
        assert abs(emd(a, b) - best) < 1e-12
    with pytest.raises(ValueError, match="same shape"):
        emd(np.zeros((3, 2)), np.zeros((4, 2)))


@pytest.mark.parametrize("name", TEACHERS)
def test_teacher_density_normalized_and_matches_samples(name):
    t = make_teacher(name)
    g = np.linspace(-8, 8, 801)
    G = np.stack(np.meshgrid(g, g, indexing="ij"), -1).reshape(-1, 2)
    p = np.exp(t.log_prob(G))
    h = g[1] - g[0]
    assert abs(p.sum() * h * h - 1) < 1e-2  # arc ends are density jumps: O(h) grid error
    y = t.sample(100000, np.random.default_rng(0))
    mean_grid = (p[:, None] * G).sum(0) * h * h
    second_grid = (p * (G ** 2).sum(1)).sum() * h * h
    assert np.allclose(y.mean(0), mean_grid, atol=0.03)
    assert abs((y ** 2).sum(1).mean() - second_grid) < 0.05 * second_grid
    # P(pi(y) = x) by integration against sample frequencies
    xs, counts = np.unique(t.pi(y), return_counts=True)
    assert np.allclose(np.exp(t.log_prob_x(xs)), counts / len(y), atol=0.01)


def test_cli_psr_train_and_student_teacher(tmp_path):
    import json

    from fastprob.cli import main

    out = tmp_path / "psr"
    main(["psr", "train", "--data", "digits", "--scale", "2", "--steps", "2", "--depth", "1", "--hidden", "8",
          "--limit", "64", "--out", str(out)])
    m = json.loads((out / "metrics.json").read_text())
    assert (out / "grid.png").stat().st_size > 0
    # bicubic of an average-pooled image nearly reproduces the LR image when pooled again
    assert m["bicubic"]["lr_psnr"] > m["bicubic"]["psnr"]
    assert m["psr_tau0.8"]["diversity"] > m["psr_tau0.0"]["diversity"] == 0.0
    with pytest.raises(SystemExit, match="power of 2"):
        main(["psr", "train", "--data", "digits", "--scale", "3", "--out", str(out)])
    st = tmp_path / "st"
    main(["psr", "student-teacher", "--cases", "two-moons", "--steps", "5", "--n-train", "600",
          "--n-test", "200", "--out", str(st)])
    r = json.loads((st / "results.json").read_text())["summary"]["two-moons"]
    assert set(r) >= {"GP", "MC dropout", "PSR flow tau=0.8", "loglik_corr"}
    assert all(np.isfinite(v["emd"][0]) for k, v in r.items() if k != "loglik_corr")
