"""LFW gray-level data for the boosted VAE: loader against skimage, bits/dim, the CLI end to end, depth 0."""
import json
import math

import numpy as np
import pytest
import torch

from fastprob.models import BoostedVAE
from fastprob.models.vae_data import bits_per_dim, load_lfw

skimage_data = pytest.importorskip("skimage.data")


def _rows(a):
    # rows as a sorted list of tuples: compares two sets of images independently of order
    return sorted(map(tuple, np.asarray(a, dtype=np.int64).tolist()))


@pytest.mark.parametrize("variant, n, sizes", [("lfw", 100, (70, 10, 20)), ("lfw-all", 200, (140, 20, 40))])
def test_load_lfw_is_skimage_subset_in_256_levels(variant, n, sizes):
    raw = skimage_data.lfw_subset()[:n]
    assert raw.shape == (n, 25, 25)
    tr, va, te, shape, n_bins = load_lfw(variant)
    assert shape == (25, 25) and n_bins == 256
    assert (tr.shape[0], va.shape[0], te.shape[0]) == sizes and tr.shape[1] == 625
    allx = torch.cat([tr, va, te]).numpy()
    # integer levels 0..255, each within half a level of skimage's value * 255
    assert (allx == np.round(allx)).all() and allx.min() >= 0 and allx.max() <= 255
    want = raw.reshape(n, -1) * 255
    assert _rows(allx) == _rows(np.floor(want + 0.5))  # the split is a partition of exactly these images
    # each image keeps its pixels: match rows and check the rounding error bound
    by_row = {tuple(r): i for i, r in enumerate(np.floor(want + 0.5).astype(np.int64).tolist())}
    for r in allx[:5]:
        i = by_row[tuple(r.astype(np.int64).tolist())]
        assert np.abs(r - want[i]).max() <= 0.5 + 1e-9
    # fixed seeded split: the same call gives the same split, another seed another one
    assert torch.equal(load_lfw(variant)[2], te)
    assert not torch.equal(load_lfw(variant, split_seed=1)[2], te)


def test_load_lfw_faces_only_and_bad_variant():
    raw = skimage_data.lfw_subset()
    faces = _rows(np.floor(raw[:100].reshape(100, -1) * 255 + 0.5))
    nonfaces = set(_rows(np.floor(raw[100:].reshape(100, -1) * 255 + 0.5)))
    tr, va, te, _, _ = load_lfw("lfw")
    got = _rows(torch.cat([tr, va, te]).numpy())
    assert got == faces and not nonfaces.intersection(got)
    with pytest.raises(ValueError, match="unknown LFW variant"):
        load_lfw("frey")


def test_bits_per_dim_hand_computed():
    # a uniform distribution over 256 levels: -log P = D ln 256 nats per image = 8 bits/dim
    D = 625
    assert bits_per_dim(D * math.log(256), D) == pytest.approx(8.0, rel=1e-12)
    # 1000 nats over 625 pixels: 1000 / 625 = 1.6 nats/dim, / ln 2 = 2.3083120654223 bits/dim
    assert bits_per_dim(1000.0, 625) == pytest.approx(2.3083120654223, rel=1e-12)
    with pytest.raises(ValueError, match="positive"):
        bits_per_dim(1.0, 0)


def test_depth_zero_component_is_the_diagonal_gaussian():
    torch.manual_seed(0)
    m = BoostedVAE(6, latent_dim=3, n_components=1, depth=0, hidden=8)
    x = torch.bernoulli(torch.full((4, 6), 0.5))
    ctx = m.encode(x)
    mu, ls = ctx[:, :3], ctx[:, 3:6]
    z, log_g = m.components[0].rsample(ctx)
    ref = torch.distributions.Normal(mu.double(), ls.double().exp()).log_prob(z.double()).sum(1)
    torch.testing.assert_close(log_g.double(), ref, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(m.components[0].log_prob(z, ctx).double(), ref, rtol=1e-5, atol=1e-5)


def test_cli_vae_on_lfw_reports_bits_per_dim(tmp_path):
    from fastprob.cli import main

    out = tmp_path / "lfw"
    main(["gbnf", "vae", "--data", "lfw", "--components", "2", "--epochs", "1", "--k", "4", "--latent", "4",
          "--hidden", "16", "--flow-hidden", "8", "--batch-size", "35", "--out", str(out)])
    met = json.loads((out / "metrics.json").read_text())
    t = met["test"]
    assert t["n"] == 20 and len(met["history"]) == 2
    assert t["nll_bpd"] == pytest.approx(t["nll"] / (625 * math.log(2)))
    assert t["nll_se_bpd"] == pytest.approx(t["nll_se"] / (625 * math.log(2)))
    # an almost untrained model: a few bits/dim, below the worst case of a far too wide logistic
    assert 2.0 < t["nll_bpd"] < 12.0
    for f in ("model.pt", "reconstructions_samples.png", "training_curve.png"):
        assert (out / f).stat().st_size > 0
    m = BoostedVAE.load(out / "model.pt")
    assert m.likelihood == "logistic" and m.n_bins == 256 and m.x_dim == 625


def test_finetuning_a_zero_weight_component_keeps_its_density_in_the_mixture_loss():
    from fastprob.models.vae_training import stage_loss

    torch.manual_seed(0)
    C = 3
    m = BoostedVAE(5, latent_dim=2, n_components=C, depth=1, hidden=8, flow_hidden=8)
    with torch.no_grad():  # fresh components are all the identity map: make them differ
        for c, comp in enumerate(m.components):
            for p in comp.parameters():
                p.add_(0.5 * torch.randn(p.shape, generator=torch.Generator().manual_seed(c)))
    m.posterior.set_rho(torch.tensor([1.0, 1.0, 0.5], dtype=torch.float64))  # weights (0, 0.5, 0.5)
    m.n_trained.fill_(C)
    x = torch.bernoulli(torch.full((6, 5), 0.5))
    beta = 0.7
    torch.manual_seed(1)
    per, rec = stage_loss(m, x, "finetune", 0, beta, objective="mixture")
    # by hand: z ~ g_0 (same random stream), the others' mixture from each component's density
    # with the weights renormalized (0.5, 0.5), and g_0 entering at the trial weight 1 / C
    torch.manual_seed(1)
    ctx = m.encode(x)
    z, log_g = m.components[0].rsample(ctx)
    lg1, lg2 = (m.components[c].log_prob(z, ctx).double() for c in (1, 2))
    log_others = torch.logaddexp(lg1, lg2) + math.log(0.5)
    log_G = torch.logaddexp(log_others + math.log(1 - 1 / C), log_g.double() + math.log(1 / C))
    prior = torch.distributions.Normal(0.0, 1.0).log_prob(z.double()).sum(1)
    lik = torch.distributions.Bernoulli(logits=m.decoder(z).double()).log_prob(x.double()).sum(1)
    want = -lik + beta * (log_G - prior)
    torch.testing.assert_close(per.double(), want, rtol=1e-5, atol=1e-4)
    torch.testing.assert_close(rec.double(), -lik, rtol=1e-5, atol=1e-4)
    assert (log_g.double() - log_others).abs().max() > 0.1  # so the test tells the trial weight from 0
