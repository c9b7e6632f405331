"""DAPPER(persona_shrinkage=kappa): personas' mean trajectories pulled towards their mean.

Oracles: kappa = 0 is the spec's model bit for bit; the ELBO (with the shrinkage term) is
monotone in full batch, as exact coordinate ascent must make it; the alpha-step given abar
equals the plain alpha-step with kappa pseudo-documents at abar (checked against the
objective by perturbation); and a large kappa collapses the personas onto one trajectory.
"""
import copy

import numpy as np
import pytest

from fastprob.datasets import make_dap_corpus
from fastprob.topics import DAPPER


@pytest.fixture(scope="module")
def corpus():
    c, _ = make_dap_corpus(n_authors=20, docs_per_author=10, n_topics=4, n_personas=3, n_words=60,
                           n_steps=4, doc_length=30, seed=3)
    return c


def _fit(c, **kw):
    args = dict(max_epochs=12, tol=0, random_state=0, progress=False, n_jobs=1)
    args.update(kw)
    return DAPPER(4, 3, **args).fit(c)


def _plain_alpha(m):
    """The spec's alpha-step recomputed from the model's last sufficient statistics."""
    from fastprob.topics import mstep

    return mstep.alpha_step(m.n_stat_, m.M_stat_, m.time_values_, m.process_noise, m._s2, m.mu0, m.sigma0,
                            m.regularization)[0]


def test_the_default_is_the_unshrunk_model_and_kappa_changes_it(corpus):
    default = _fit(corpus)
    assert default.persona_shrinkage == 0.0
    np.testing.assert_array_equal(default.alpha_, _plain_alpha(default))
    shrunk = _fit(corpus, persona_shrinkage=20.0)
    assert np.abs(shrunk.alpha_ - _plain_alpha(shrunk)).max() > 1e-3


@pytest.mark.parametrize("kappa", [5.0, 50.0])
def test_full_batch_objective_is_monotone(corpus, kappa):
    m = _fit(corpus, persona_shrinkage=kappa)
    e = np.array([h["elbo"] for h in m.history_])
    assert np.all(np.diff(e) >= -1e-9 * np.abs(e[1:])), np.diff(e)


def _alpha_objective(m, alpha):
    """The terms of the objective that depend on the persona means (their variances fixed):
    the documents' -1/(2 s2) sum tau ||m_d - alpha||^2 (through the sufficient statistics),
    the random-walk prior's mean terms and the shrinkage term with abar at its maximizer."""
    from fastprob.topics import mstep

    s2, kappa = m._s2, m.persona_shrinkage
    n, M = m.n_stat_, m.M_stat_
    docs = -0.5 / s2 * (np.sum(n[..., None] * alpha * alpha) - 2.0 * np.sum(M * alpha))
    pd, po = mstep.prior_precision(m.time_values_, m.process_noise, m.sigma0)
    a0 = alpha - m.mu0
    prior = -0.5 * (np.einsum("t,tpk,tpk->", pd, a0, a0) + 2.0 * np.einsum("t,tpk,tpk->", po, a0[:-1], a0[1:]))
    dev = alpha - alpha.mean(axis=1, keepdims=True)
    return docs + prior - 0.5 * kappa / s2 * np.sum(dev * dev)


def test_alpha_step_maximizes_the_shrunk_objective(corpus):
    m = _fit(corpus, persona_shrinkage=20.0, max_epochs=3)
    m._SHRINK_SWEEPS = 200  # converge the alternation: then alpha is the joint maximizer
    m._alpha_update()
    best = _alpha_objective(m, m.alpha_)
    rng = np.random.default_rng(0)
    for _ in range(20):
        d = rng.normal(size=m.alpha_.shape) * 1e-3
        assert _alpha_objective(m, m.alpha_ + d) < best
    # and it is not the unshrunk maximizer
    plain = copy.deepcopy(m)
    plain.persona_shrinkage = 0.0
    plain._alpha_update()
    assert _alpha_objective(m, plain.alpha_) < best - 1e-6


def test_large_kappa_collapses_the_personas(corpus):
    free, tied = _fit(corpus, max_epochs=5), _fit(corpus, persona_shrinkage=1e6, max_epochs=5)
    spread = lambda m: float(np.abs(m.alpha_ - m.alpha_.mean(axis=1, keepdims=True)).max())  # noqa: E731
    assert spread(tied) < 1e-3 < spread(free)


@pytest.mark.parametrize("kw, msg", [
    (dict(persona_shrinkage=-1.0), "persona_shrinkage"),
    (dict(persona_shrinkage=float("nan")), "persona_shrinkage"),
    (dict(persona_shrinkage=5.0, regularization=0.2), "use one of them"),
    (dict(persona_shrinkage=5.0, fit_doc_noise=True), "fit_doc_noise"),
])
def test_bad_settings_are_refused(corpus, kw, msg):
    with pytest.raises(ValueError, match=msg):
        _fit(corpus, max_epochs=1, **kw)


def test_cli_flag(tmp_path):
    import json

    from fastprob.cli import main

    c, _ = make_dap_corpus(n_authors=15, docs_per_author=8, n_topics=3, n_personas=2, n_words=50,
                           n_steps=2, doc_length=25, seed=1)
    c.save(str(tmp_path / "c"))
    main(["dapper", "fit", "--corpus", str(tmp_path / "c"), "--topics", "3", "--personas", "2", "--epochs", "2",
          "--persona-shrinkage", "7.5", "--out", str(tmp_path / "run")])
    metrics = json.loads((tmp_path / "run" / "metrics.json").read_text())
    assert metrics["params"]["persona_shrinkage"] == 7.5


def test_a_persona_without_documents_sits_at_its_prior(corpus):
    """Without shrinkage an empty persona stays at the prior mean mu0 = 0; with it, its prior
    is centred on the personas' mean trajectory (smoothed by the random walk over time), and
    it sits much nearer to that than to mu0."""
    for kappa in (0.0, 20.0):
        m = _fit(corpus, persona_shrinkage=kappa, max_epochs=4)
        m.n_stat_[:, 0] = 0.0   # persona 0 loses its documents
        m.M_stat_[:, 0] = 0.0
        m._SHRINK_SWEEPS = 200
        m._alpha_update()
        others = m.alpha_[:, 1:].mean(axis=1)
        if kappa == 0:
            assert np.abs(m.alpha_[:, 0]).max() < 1e-9
        else:
            gap = np.linalg.norm(m.alpha_[:, 0] - others)
            assert np.linalg.norm(others) > 0.1 and gap < 0.5 * np.linalg.norm(others), \
                (gap, np.linalg.norm(others))
