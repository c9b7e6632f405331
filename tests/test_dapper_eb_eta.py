"""Empirical Bayes for DAPPER's symmetric topic prior eta (``fit_eta=True``)."""
import numpy as np
import pytest
from scipy.optimize import minimize_scalar
from scipy.special import digamma, gammaln

from fastprob.datasets import make_dap_corpus
from fastprob.topics import DAPPER
from fastprob.topics.mstep import dirichlet_elbo, fit_symmetric_dirichlet


def _prior_term(eta, lam):
    """sum_rows E_q[log Dir(x | eta)] written out with gammaln (independent of the fitter)."""
    rows, n = lam.shape
    elog = digamma(lam) - digamma(lam.sum(1, keepdims=True))
    return rows * (gammaln(n * eta) - n * gammaln(eta)) + (eta - 1) * elog.sum()


@pytest.mark.parametrize("scale,shape", [(0.05, (4, 30)), (3.0, (6, 200)), (0.3, (1, 5))])
def test_fitted_eta_is_the_maximum(scale, shape):
    rng = np.random.default_rng(1)
    lam = rng.gamma(scale, 1.0, size=shape) + 1e-3
    eta = fit_symmetric_dirichlet(lam)
    # oracle: a bounded scalar search on the objective itself, in log eta
    r = minimize_scalar(lambda u: -_prior_term(np.exp(u), lam), bounds=(np.log(1e-8), np.log(1e3)),
                        method="bounded", options={"xatol": 1e-10})
    assert abs(np.log(eta) - r.x) < 1e-4
    for f in (0.9, 1.1):  # and a neighbour never does better
        assert _prior_term(eta, lam) >= _prior_term(eta * f, lam)
    # it is also the maximizer of the whole Dirichlet ELBO term over the prior
    assert dirichlet_elbo(lam, eta) >= max(dirichlet_elbo(lam, eta * 0.95), dirichlet_elbo(lam, eta * 1.05))


def test_fit_eta_keeps_the_full_batch_elbo_monotone_and_round_trips(tmp_path):
    c, true = make_dap_corpus(n_authors=10, docs_per_author=8, n_topics=4, n_personas=2, n_words=120,
                              n_steps=4, doc_length=40, eta=0.05, seed=3)
    m = DAPPER(4, 2, max_epochs=12, tol=0, fit_eta=True, random_state=0, progress=False, n_jobs=1).fit(c)
    elbo = [h["elbo"] for h in m.history_]
    assert all(b >= a - 1e-9 * abs(a) for a, b in zip(elbo, elbo[1:])), np.diff(elbo)
    assert m.eta_fitted_ is not None and m.eta_ == m.eta_fitted_ != 1 / 4
    # the topics were refitted with the fitted prior: lambda - eta_ are the word statistics
    assert np.all(m.lambda_ > m.eta_ - 1e-12)
    p = tmp_path / "m.npz"
    m.save(p)
    m2 = DAPPER.load(p)
    assert m2.eta_ == pytest.approx(m.eta_) and m2.get_params()["fit_eta"] is True
    # with it off the prior stays at its default
    m3 = DAPPER(4, 2, max_epochs=3, tol=0, random_state=0, progress=False, n_jobs=1).fit(c)
    assert m3.eta_ == 1 / 4 and m3.eta_fitted_ is None
