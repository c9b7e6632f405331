"""BoostedVAE: mixture posterior density and sampling, C = 1 case, importance sampling, Algorithm 1, I/O."""
import math

import numpy as np
import pytest
import torch
from scipy import stats

from fastprob.models import BoostedVAE, fit_boosted_vae, update_rho
from fastprob.models.boosted_vae import discretized_logistic_log_prob
from fastprob.models.vae_training import stage_loss


@pytest.fixture(autouse=True, scope="module")
def one_thread():
    # tiny networks: a second thread only adds synchronization cost on a shared machine
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


def _perturb(module, scale, seed):
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in module.parameters():
            p.add_(scale * torch.randn(p.shape, generator=g, dtype=p.dtype))


def _trained_mix(rho, latent=2, x_dim=3, seed=0, likelihood="gaussian"):
    """A model whose C = len(rho) components are random (non-identity) flows, marked trained."""
    m = BoostedVAE(x_dim, latent_dim=latent, n_components=len(rho), depth=2, hidden=16, flow_hidden=8,
                   context_dim=2, likelihood=likelihood, seed=seed)
    for c, g in enumerate(m.components):
        _perturb(g, 0.3, 100 + c)
    m.posterior.set_rho(torch.tensor(rho, dtype=torch.float64))
    m.n_trained.fill_(len(rho))
    return m.eval()


def _component_log_prob_autograd(m, c, z, x):
    """log g_c(z | x) from first principles in float64: z0 = f(z) by the flow's forward map,
    log N(z0; mu, sigma) + log|det df/dz| by an autograd Jacobian and slogdet."""
    md = m.double()
    ctx = md.encode(x.double())
    d = m.latent_dim
    mu, ls, h = ctx[:, :d], ctx[:, d:2 * d], ctx[:, 2 * d:]
    flow = md.components[c].flow
    out = []
    for i in range(z.shape[0]):
        zi = z[i:i + 1].double()
        f = lambda v: flow.forward(v[None], h[:1])[0][0]  # noqa: E731
        J = torch.autograd.functional.jacobian(f, zi[0])
        z0 = f(zi[0])
        base = torch.distributions.Normal(mu[0], torch.exp(ls[0])).log_prob(z0).sum()
        out.append(base + torch.linalg.slogdet(J)[1])
    m.float()
    return torch.stack(out).detach()


def test_mixture_density_equals_bruteforce_and_integrates_to_one():
    rho = [1.0, 0.4, 0.3]
    m = _trained_mix(rho)
    x = torch.tensor([[0.3, -0.2, 1.0]])
    z = torch.randn(6, 2, generator=torch.Generator().manual_seed(1)) * 1.5
    w = [1 * 0.6 * 0.7, 0.4 * 0.7, 0.3]  # w_c = rho_c prod_{j>c} (1 - rho_j), by hand
    lg = torch.stack([_component_log_prob_autograd(m, c, z, x.expand(6, 3)) for c in range(3)])
    brute = torch.log(sum(w[c] * torch.exp(lg[c]) for c in range(3)))
    with torch.no_grad():
        got = m.posterior_log_prob(z, x.expand(6, 3))
    torch.testing.assert_close(got, brute, rtol=1e-4, atol=1e-4)
    # the whole mixture is a normalized density on a 2-D latent
    g = torch.linspace(-10, 10, 401)
    zz = torch.stack(torch.meshgrid(g, g, indexing="ij"), -1).reshape(-1, 2)
    with torch.no_grad():
        mass = float(torch.exp(m.posterior_log_prob(zz, x.expand(zz.shape[0], 3))).sum() * (g[1] - g[0]) ** 2)
    assert abs(mass - 1.0) < 5e-3, mass


def test_posterior_sampling_frequencies_match_weights():
    rho = [1.0, 0.5, 0.2]
    m = _trained_mix(rho, seed=3)
    with torch.no_grad():
        # encoder: z0 ~ N(0, 0.3^2); component c: a pure shift by 6c (far apart, so each
        # sample can be attributed to its component)
        enc_out = m.encoder[-1]
        enc_out.weight.zero_()
        enc_out.bias.zero_()
        enc_out.bias[2:4] = math.log(0.3)
        for c, comp in enumerate(m.components):
            for t in comp.flow.transforms:
                last = t.net.net[-1]
                last.weight.zero_()
                last.bias.zero_()
                last.bias[t.c_t:] = 3.0 * c  # each of the two couplings shifts its half
    x = torch.zeros(1, 3)
    n = 20000
    z = m.sample_posterior(x, n)[0]
    centers = torch.stack([m.components[c].flow.inverse(torch.zeros(1, 2), torch.zeros(1, 2))[0][0]
                           for c in range(3)]).detach()
    assert torch.pdist(centers).min() > 3  # the construction really separates the components
    which = torch.cdist(z, centers).argmin(1)
    counts = torch.bincount(which, minlength=3).numpy()
    w = np.array([0.5 * 0.8, 0.5 * 0.8, 0.2])
    chi2 = stats.chisquare(counts, n * w)
    assert chi2.pvalue > 1e-4, (counts, n * w)


def test_one_component_is_the_single_flow_vae():
    m = _trained_mix([1.0], latent=2, x_dim=5, likelihood="bernoulli")
    _perturb(m.decoder, 0.2, 7)
    x = torch.bernoulli(torch.full((4, 5), 0.5), generator=torch.Generator().manual_seed(2))
    torch.manual_seed(11)
    per, _ = stage_loss(m, x, "boost", 0, beta=1.0)
    # independent -ELBO of a VAE with one flow posterior: same noise, torch.distributions, autograd log-det
    torch.manual_seed(11)
    ctx = m.encoder(x).double()
    mu, ls, h = ctx[:, :2], ctx[:, 2:4], ctx[:, 4:]
    eps = torch.randn(4, 2).double()
    md = m.double()
    ref = []
    for i in range(4):
        z0 = mu[i] + torch.exp(ls[i]) * eps[i]
        f = lambda v: md.components[0].flow.inverse(v[None], h[i:i + 1])[0][0]  # noqa: E731
        zk = f(z0)
        log_q = torch.distributions.Normal(mu[i], torch.exp(ls[i])).log_prob(z0).sum() - \
            torch.linalg.slogdet(torch.autograd.functional.jacobian(f, z0))[1]
        lpx = torch.distributions.Bernoulli(logits=md.decoder(zk)).log_prob(x[i].double()).sum()
        lpz = torch.distributions.Normal(0.0, 1.0).log_prob(zk).sum()
        ref.append(-(lpx + lpz - log_q))
    m.float()
    torch.testing.assert_close(per.double().detach(), torch.stack(ref).detach(), rtol=1e-4, atol=1e-4)
    with torch.no_grad():
        z = torch.randn(4, 2)
        torch.testing.assert_close(m.posterior_log_prob(z, x), m.components[0].log_prob(z, m.encode(x)).double())


def test_importance_sampling_on_linear_gaussian_model():
    m = _trained_mix([1.0, 0.5], latent=2, x_dim=3, seed=5)
    W = torch.tensor([[1.0, -0.5], [0.3, 0.8], [-0.7, 0.2]])
    b = torch.tensor([0.1, -0.2, 0.3])
    lin = torch.nn.Linear(2, 3)
    with torch.no_grad():
        lin.weight.copy_(W)
        lin.bias.copy_(b)
        m.dec_log_scale.fill_(0.0)
    m.decoder = lin
    # exact marginal: x ~ N(b, W W^T + I)
    cov = (W @ W.T + torch.eye(3)).double()
    px = torch.distributions.MultivariateNormal(b.double(), cov)
    torch.manual_seed(0)
    x = px.sample(torch.Size([30])).float()
    exact = px.log_prob(x.double())
    err = {}
    for k in (1, 10, 1000):
        reps = [torch.logsumexp(m.log_weights(x, k), 1) - math.log(k) for _ in range(4 if k < 1000 else 1)]
        err[k] = float(torch.stack([(r - exact).abs().mean() for r in reps]).mean())
    elbo = m.log_weights(x, 2000).mean(1)  # a precise ELBO per point (fresh samples)
    is_est = torch.logsumexp(m.log_weights(x, 1000), 1) - math.log(1000)
    assert (elbo <= exact + 1e-3).all()                  # the ELBO is a lower bound
    assert float((is_est - elbo).mean()) > 0.05          # IS tightens it on this poor posterior
    assert err[1000] < err[10] < err[1] and err[1000] < 0.2, err
    ev = m.evaluate(x, k=1000, batch_size=10)
    assert abs(ev["nll"] + float(exact.mean())) < 3 * ev["nll_se"] + 0.05
    assert ev["neg_elbo"] > ev["nll"]


def test_update_rho_corrected_stopping_rule_and_clip():
    tol = 1e-3
    rho, trace, conv = update_rho(lambda r: 4.0 * (r - 0.3), 0.9, step=0.2, decay=0.5, tol=tol, max_iter=1000)
    d = np.abs(np.diff(trace))
    assert conv and len(trace) > 3  # the thesis' inverted test would stop before moving at all
    assert d[-1] < tol and (d[:-1] >= tol).all()  # stops at the first change below the tolerance
    assert abs(rho - 0.3) < 0.01
    # clipped to [0, 1]: a gradient pushing up pins rho at 1, then the change is 0 and it stops
    rho, trace, conv = update_rho(lambda r: -5.0, 0.5, step=0.2, tol=tol)
    assert rho == 1.0 and conv and all(0 <= t <= 1 for t in trace)
    rho, trace, conv = update_rho(lambda r: 50.0, 0.5, step=0.2, tol=tol)
    assert rho == 0.0 and min(trace) == 0.0
    gen = np.random.default_rng(0)
    rho, trace, _ = update_rho(lambda r: (r - 0.7) + 3 * gen.standard_normal(), 0.25, step=0.5, tol=tol)
    assert all(0 <= t <= 1 for t in trace)
    _, trace, conv = update_rho(lambda r: 1.0, 0.5, step=0.1, decay=0.0, tol=1e-6, max_iter=3)
    assert not conv and len(trace) == 4


@pytest.fixture(scope="module")
def digits():
    from sklearn.datasets import load_digits

    x = torch.tensor(load_digits().data[:360] / 16.0, dtype=torch.float32)
    return x[:300], torch.bernoulli(x[300:], generator=torch.Generator().manual_seed(0))


def _small(C=2, seed=0):
    return BoostedVAE(64, latent_dim=4, n_components=C, depth=2, hidden=32, flow_hidden=16, context_dim=4, seed=seed)


def test_fit_save_load_and_resume(digits, tmp_path):
    xt, xv = digits
    m = _small()
    h = fit_boosted_vae(m, xt, xv, epochs=2, finetune_epochs=1, dynamic_binarize=True, progress=False,
                        checkpoint=str(tmp_path / "a.pt"))
    assert h["done"] and int(m.n_trained) == 2 and len(h["epochs"]) == 6
    assert [r["component"] for r in h["rho"]] == [0, 1, 1]  # rho_1 set, then re-computed after fine-tuning
    r = h["rho"][-1]
    assert 0 <= r["rho"] <= 1 and float(m.posterior.rho[1]) == r["rho"]
    assert abs(sum(r["weights"]) - 1) < 1e-12
    m.save(tmp_path / "m.pt")
    m2 = BoostedVAE.load(tmp_path / "m.pt")
    z = torch.randn(60, 4)
    with torch.no_grad():
        torch.testing.assert_close(m2.posterior_log_prob(z, xv), m.posterior_log_prob(z, xv))
    assert m2.evaluate(xv, k=20) == m.evaluate(xv, k=20)
    # interrupted after 3 epochs and resumed from the checkpoint == one uninterrupted run
    m3 = _small()
    fit_boosted_vae(m3, xt, xv, epochs=2, finetune_epochs=1, dynamic_binarize=True, progress=False,
                    checkpoint=str(tmp_path / "b.pt"), max_epochs=3)
    assert int(m3.n_trained) == 1
    m4 = _small()
    h4 = fit_boosted_vae(m4, xt, xv, epochs=2, finetune_epochs=1, dynamic_binarize=True, progress=False,
                         checkpoint=str(tmp_path / "b.pt"))
    assert h4["done"] and len(h4["epochs"]) == 6
    for (k, a), b in zip(m.state_dict().items(), m4.state_dict().values()):
        torch.testing.assert_close(a, b, msg=k)
    with pytest.raises(ValueError, match="different model configuration"):
        fit_boosted_vae(_small(C=3), xt, xv, epochs=1, dynamic_binarize=True, progress=False,
                        checkpoint=str(tmp_path / "b.pt"))


def test_mitigation_feeds_old_samples_to_the_decoder_only(digits):
    xt, xv = digits
    m = _small()
    fit_boosted_vae(m, xt, xv, epochs=1, dynamic_binarize=True, progress=False)
    x = xv[:32]
    g1 = list(m.components[1].parameters())

    def grads(mix, mode):
        torch.manual_seed(0)
        per, _ = stage_loss(m, x, "boost", 1, 1.0, mix, mode)
        return torch.autograd.grad(per.mean(), g1 + list(m.decoder.parameters()), allow_unused=True)

    for p in g1 + list(m.decoder.parameters()):
        p.requires_grad_(True)
    full = grads(1.0, "sample")  # every sample from the fixed G_0: no signal for g_1, some for the decoder
    assert all(g is None or float(g.abs().max()) == 0 for g in full[:len(g1)])
    assert any(g is not None and float(g.abs().max()) > 0 for g in full[len(g1):])
    batch = grads(1.0, "batch")
    assert all(g is None or float(g.abs().max()) == 0 for g in batch[:len(g1)])
    off = grads(1.0, "off")  # switched off: g_1 is trained as usual
    assert any(g is not None and float(g.abs().max()) > 0 for g in off[:len(g1)])


def test_discretized_logistic_is_normalized():
    n_bins = 17
    k = torch.arange(n_bins, dtype=torch.float64)
    loc, ls = torch.tensor(0.37, dtype=torch.float64), torch.tensor(-1.7, dtype=torch.float64)
    lp = discretized_logistic_log_prob(k, loc, ls, n_bins)
    assert abs(float(torch.exp(lp).sum()) - 1) < 1e-12
    # an interior bin against the logistic CDF difference computed directly
    cdf = lambda v: 1 / (1 + math.exp(-(v - 0.37) / math.exp(-1.7)))  # noqa: E731
    h = 0.5 / 16
    assert abs(math.exp(float(lp[5])) - (cdf(5 / 16 + h) - cdf(5 / 16 - h))) < 1e-12


def test_bad_input(digits, tmp_path):
    xt, xv = digits
    m = _small()
    with pytest.raises(RuntimeError, match="no trained component"):
        m.evaluate(xv)
    with pytest.raises(ValueError, match="binary"):
        fit_boosted_vae(m, xt, xt, epochs=1, progress=False)
    with pytest.raises(ValueError, match="shape"):
        m.check_x(torch.zeros(3, 10))
    with pytest.raises(ValueError, match="NaN"):
        m.check_x(torch.full((2, 64), float("nan")))
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        fit_boosted_vae(m, xt * 3, xv, epochs=1, dynamic_binarize=True, progress=False)
    with pytest.raises(ValueError, match="mitigation"):
        fit_boosted_vae(m, xt, xv, mitigation="sometimes", dynamic_binarize=True, progress=False)
    with pytest.raises(ValueError, match="objective"):
        fit_boosted_vae(m, xt, xv, objective="other", dynamic_binarize=True, progress=False)
    with pytest.raises(ValueError, match="likelihood"):
        BoostedVAE(64, likelihood="poisson")
    with pytest.raises(ValueError, match="n_bins"):
        BoostedVAE(64, likelihood="logistic")
    with pytest.raises(ValueError, match="n_components"):
        BoostedVAE(64, n_components=0)
    with pytest.raises(ValueError, match="rho0"):
        update_rho(lambda r: 0.0, 1.5)
    with pytest.raises(FloatingPointError, match="non-finite"):
        update_rho(lambda r: float("nan"), 0.5)
    lg = BoostedVAE(4, latent_dim=2, n_components=1, likelihood="logistic", n_bins=4)
    with pytest.raises(ValueError, match="gray levels"):
        lg.check_x(torch.tensor([[0.5, 1, 2, 3]]))
    fit_boosted_vae(m, xt, xv, epochs=1, dynamic_binarize=True, progress=False)
    with pytest.raises(ValueError, match="positive integer"):
        m.evaluate(xv, k=0)
    torch.save({"x": 1}, tmp_path / "junk.pt")
    with pytest.raises(ValueError, match="not a BoostedVAE"):
        BoostedVAE.load(tmp_path / "junk.pt")


def test_cli_vae_writes_outputs_and_resumes(tmp_path, capsys):
    import json

    from fastprob.cli import main

    out = tmp_path / "run"
    args = ["gbnf", "vae", "--data", "digits", "--components", "2", "--epochs", "1", "--k", "5", "--limit", "200",
            "--latent", "4", "--hidden", "32", "--flow-hidden", "16", "--out", str(out)]
    main(args)
    met = json.loads((out / "metrics.json").read_text())
    assert met["test"]["k"] == 5 and len(met["history"]) == 2 and len(met["weights"]) == 2
    assert met["test"]["nll"] <= met["test"]["neg_elbo"] + 3 * met["test"]["neg_elbo_se"]
    for f in ("model.pt", "checkpoint.pt", "reconstructions_samples.png", "training_curve.png"):
        assert (out / f).stat().st_size > 0
    main(args)  # finished checkpoint: resumes, trains nothing more
    assert "resuming" in capsys.readouterr().out
    assert len(json.loads((out / "metrics.json").read_text())["history"]) == 2
