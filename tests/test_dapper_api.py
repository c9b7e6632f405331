"""DAPPER estimator API: fit modes, persistence, resume, bad input, reports, CLI."""
import json
import os

import numpy as np
import pytest

from fastprob.corpus import Corpus, ShardSet, build_corpus
from fastprob.datasets import make_dap_corpus
from fastprob.topics import DAPPER, split_halves
from fastprob.topics import report as rep


@pytest.fixture(scope="module")
def data():
    c, truth = make_dap_corpus(n_authors=25, docs_per_author=12, n_topics=5, n_personas=3, n_words=80,
                               n_steps=4, doc_length=40, seed=5)
    return c.split(0.15, seed=1) + (truth,)


def test_fit_attributes_and_transform(data):
    tr, te, _ = data
    m = DAPPER(5, 3, max_epochs=3, random_state=0, progress=False).fit(tr, test=te)
    assert m.topic_word_.shape == (5, tr.n_words) and np.allclose(m.topic_word_.sum(1), 1)
    assert m.author_persona_.shape == (tr.n_authors, 3)
    assert m.persona_trajectories_.shape == (tr.n_steps, 3, 5)
    assert m.persona_trajectory_var_.shape == (tr.n_steps, 3) and (m.persona_trajectory_var_ > 0).all()
    assert len(m.history_) == 3 and all("test_pwll" in h for h in m.history_)
    personas, topics = m.transform(te)
    assert personas.shape == (te.n_docs, 3) and topics.shape == (te.n_docs, 5)
    assert np.allclose(personas.sum(1), 1) and np.allclose(topics.sum(1), 1)
    s = m.score(te)
    assert np.isfinite(s) and s < 0 and s > -np.log(tr.n_words) - 1
    assert m.elbo(te) < 0


def test_minibatch_mode_and_partial_fit(data):
    tr, te, _ = data
    m = DAPPER(5, 3, batch_size=40, max_epochs=4, random_state=0, progress=False).fit(tr, test=te)
    assert m.n_updates_ == 4 * int(np.ceil(tr.n_docs / 40))
    assert m.history_[-1]["test_pwll"] > m.history_[0]["test_pwll"] - 0.05
    p = DAPPER(5, 3, batch_size=40, random_state=0, progress=False)
    for b in tr.iter_batches(40, seed=0):
        p.partial_fit(b)
    assert p.n_updates_ == int(np.ceil(tr.n_docs / 40)) and np.isfinite(p.lambda_).all()


def test_streamed_shards_match_in_memory_counts(data, tmp_path):
    tr, te, _ = data
    tr.save(tmp_path / "c", shard_docs=50)
    ss = ShardSet(tmp_path / "c")
    m = DAPPER(5, 3, batch_size=32, max_epochs=2, random_state=0, progress=False).fit(ss)
    assert np.isfinite(m.score(te))
    with pytest.raises(ValueError, match="batch_size"):
        DAPPER(5, 3, progress=False).fit(ss)


def test_save_load_roundtrip(data, tmp_path):
    tr, te, _ = data
    m = DAPPER(5, 3, max_epochs=2, random_state=0, progress=False).fit(tr)
    m.save(tmp_path / "m.npz")
    m2 = DAPPER.load(tmp_path / "m.npz")
    for k in ("lambda_", "delta_", "alpha_", "alpha_var_"):
        np.testing.assert_array_equal(getattr(m, k), getattr(m2, k))
    assert m2.score(te) == pytest.approx(m.score(te), rel=1e-12)  # summation order may differ
    assert m2.get_params() == m.get_params()


def test_resume_reaches_the_same_model(data, tmp_path):
    tr, _, _ = data
    full = DAPPER(5, 3, batch_size=50, max_epochs=4, tol=0, random_state=3, progress=False).fit(tr)
    ck = tmp_path / "ck.npz"
    part = DAPPER(5, 3, batch_size=50, max_epochs=2, tol=0, random_state=3, progress=False)
    part.fit(tr, checkpoint=ck)
    # a new process would construct the estimator again and resume from the checkpoint
    again = DAPPER(5, 3, batch_size=50, max_epochs=4, tol=0, random_state=3, progress=False)
    again.fit(tr, checkpoint=ck, resume=True)
    assert again.epoch_ == 4
    # equal up to summation order: the vectorized (reassociated) reductions may split
    # differently with array alignment, so ~1e-14 differences are expected, not more
    np.testing.assert_allclose(again.lambda_, full.lambda_, rtol=1e-10)
    np.testing.assert_allclose(again.alpha_, full.alpha_, rtol=1e-10, atol=1e-12)


def test_bad_parameters():
    for kw in ({"regularization": 1.0}, {"regularization": 1.5}, {"regularization": -0.1}):
        with pytest.raises(ValueError, match="rho"):
            DAPPER(5, 3, **kw)
    with pytest.raises(ValueError, match="n_topics"):
        DAPPER(0, 3)
    with pytest.raises(ValueError, match="n_personas"):
        DAPPER(3, 0)
    with pytest.raises(ValueError, match="batch_size"):
        DAPPER(3, 2, batch_size=0)
    with pytest.raises(ValueError, match="local_solver"):
        DAPPER(3, 2, local_solver="lbfgs")


def test_empty_corpus_and_unfitted():
    empty = build_corpus([], verbose=False)
    with pytest.raises(ValueError, match="empty corpus"):
        DAPPER(3, 2, progress=False).fit(empty)
    with pytest.raises(RuntimeError, match="not fitted"):
        DAPPER(3, 2).score(empty)
    with pytest.raises(TypeError):
        DAPPER(3, 2).fit([("a", 1, "text")])


def test_unseen_authors_and_time_steps_use_priors(data):
    tr, te, _ = data
    m = DAPPER(5, 3, max_epochs=2, random_state=0, progress=False).fit(tr)
    other = te._with(author_names=[f"new{i}" for i in range(te.n_authors)],
                     time_values=te.time_values + 0.5)
    with pytest.warns(UserWarning, match="unseen_authors.*outside_training_time_steps"):
        personas, _ = m.transform(other)
    assert np.all(np.isfinite(personas))
    with pytest.warns(UserWarning):
        assert np.isfinite(m.score(other))


def test_load_rejects_nan_and_garbage(data, tmp_path):
    tr, _, _ = data
    m = DAPPER(5, 3, max_epochs=1, random_state=0, progress=False).fit(tr)
    m.lambda_[0, 0] = np.nan
    m.save(tmp_path / "bad.npz")
    with pytest.raises(ValueError, match="NaN"):
        DAPPER.load(tmp_path / "bad.npz")
    (tmp_path / "junk.npz").write_bytes(b"not a zip")
    with pytest.raises(ValueError, match="not a readable"):
        DAPPER.load(tmp_path / "junk.npz")
    raw = (tmp_path / "bad.npz").read_bytes()
    (tmp_path / "trunc.npz").write_bytes(raw[: len(raw) // 2])
    with pytest.raises(ValueError):
        DAPPER.load(tmp_path / "trunc.npz")


def test_document_completion_split(data):
    _, te, _ = data
    obs, held = split_halves(te, seed=0)
    assert obs.n_docs == held.n_docs
    np.testing.assert_array_equal(obs.doc_lengths + held.doc_lengths,
                                  te.doc_lengths[te.doc_lengths >= 2])
    np.testing.assert_array_equal(obs.doc_lengths, te.doc_lengths[te.doc_lengths >= 2] // 2)
    obs2, _ = split_halves(te, seed=0)
    np.testing.assert_array_equal(obs.indices, obs2.indices)


def test_reports(data, tmp_path):
    tr, _, _ = data
    m = DAPPER(5, 3, max_epochs=2, random_state=0, progress=False).fit(tr)
    summ = rep.write_reports(m, tmp_path, corpus=tr, metrics={"x": 1})
    for f in ("topics.txt", "personas.png", "authors.csv", "persona_summary.json", "metrics.json"):
        assert (tmp_path / f).stat().st_size > 0
    assert (tmp_path / "personas.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert 0 <= summ["share_single_persona"] <= 1 and 1 <= summ["distinct_top3_topics"] <= 5
    assert len(rep.top_words(m, 4)) == 5 and len(rep.author_table(m)) == tr.n_authors


def test_cli_fit_and_report(tmp_path, monkeypatch):
    from fastprob.cli import main
    from fastprob.corpus import write_jsonl

    rng = np.random.default_rng(0)
    words = ["alpha", "bravo", "charlie", "delta", "echo", "foxtrot", "golf", "hotel", "india", "juliet"]
    recs = [{"author": f"a{i % 6}", "timestamp": f"2020-0{1 + i % 3}-1{i % 9}",
             "text": " ".join(rng.choice(words[(i % 2) * 5:(i % 2) * 5 + 5], size=20))} for i in range(120)]
    write_jsonl(recs, tmp_path / "r.jsonl")
    out = tmp_path / "run"
    monkeypatch.setenv("FASTPROB_PROGRESS", "0")
    main(["dapper", "fit", "--corpus", str(tmp_path / "r.jsonl"), "--topics", "2", "--personas", "2",
          "--epochs", "3", "--time-width", "30", "--out", str(out)])
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["epochs"] == 3 and np.isfinite(metrics["test_pwll"])
    assert (out / "personas.png").exists() and (out / "model.npz").exists()
    main(["dapper", "report", str(out / "model.npz"), "--out", str(tmp_path / "rep")])
    assert (tmp_path / "rep" / "topics.txt").exists()
