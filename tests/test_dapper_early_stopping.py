"""DAPPER(early_stopping=True): a validation split, the best epoch kept, clear refusals.

The oracle for every check is a plain fit (no early stopping) on the same training part:
early stopping must not change what an epoch computes, only which epoch's globals are kept.
"""
import numpy as np
import pytest

from fastprob.datasets import make_dap_corpus
from fastprob.topics import DAPPER


@pytest.fixture(scope="module")
def corpus():
    c, _ = make_dap_corpus(n_authors=20, docs_per_author=10, n_topics=4, n_personas=2, n_words=60,
                           n_steps=3, doc_length=30, seed=3)
    return c


def _kw(**extra):
    return dict(n_topics=4, n_personas=2, tol=0, random_state=0, progress=False, n_jobs=1, **extra)


def _scripted_scores(monkeypatch, values):
    """Make DAPPER.score return ``values`` in turn (the validation PWLL of epochs 1, 2, ...)."""
    it = iter(values)
    monkeypatch.setattr(DAPPER, "score", lambda self, corpus, seed=0: next(it))


def test_validation_split_is_held_out_and_history_matches_a_plain_fit(corpus):
    m = DAPPER(max_epochs=4, early_stopping=True, validation_fraction=0.2, n_iter_no_change=10, **_kw()).fit(corpus)
    train, val = corpus.split(0.2, seed=0)
    plain = DAPPER(max_epochs=1, **_kw())
    scores = []
    for e in range(4):  # one epoch at a time, scored on the validation part as early stopping does
        if e:
            plain.max_epochs += 1
        plain.fit(train, resume=bool(e))
        scores.append(plain.score(val))
    assert m.n_docs_total_ == train.n_docs  # validation documents were not trained on
    assert [h["val_pwll"] for h in m.history_] == pytest.approx(scores, abs=1e-12)
    assert [h["elbo"] for h in m.history_] == pytest.approx([h["elbo"] for h in plain.history_], rel=1e-12)
    assert m.stop_reason_ == "max_epochs" and m.best_epoch_ == int(np.argmax(scores)) + 1


def test_restores_the_best_epoch_after_patience_runs_out(corpus, monkeypatch):
    # validation PWLL peaks at epoch 2, then falls: with patience 2 the fit stops after epoch 4
    _scripted_scores(monkeypatch, [-5.0, -4.0, -4.5, -4.6, -4.7, -4.8])
    m = DAPPER(max_epochs=6, early_stopping=True, n_iter_no_change=2, **_kw()).fit(corpus)
    assert m.epoch_ == 4 and m.stop_reason_ == "early_stopping" and m.best_epoch_ == 2
    assert [h["val_pwll"] for h in m.history_] == [-5.0, -4.0, -4.5, -4.6]
    train, _ = corpus.split(0.1, seed=0)
    oracle = DAPPER(max_epochs=2, **_kw()).fit(train)
    for name in ("lambda_", "alpha_", "alpha_var_", "delta_"):
        np.testing.assert_array_equal(getattr(m, name), getattr(oracle, name), err_msg=name)
    # the warm locals belonged to epoch 4: a continued fit must start cold, not from them
    assert m._warm_ is None


def test_a_fit_that_ends_otherwise_also_keeps_its_best_epoch_and_resumes_where_it_was(corpus, monkeypatch):
    # max_epochs runs out before the patience: the best epoch (2) is still what fit returns
    _scripted_scores(monkeypatch, [-5.0, -4.0, -4.5, -4.6, -4.7, -4.8])
    m = DAPPER(max_epochs=4, early_stopping=True, n_iter_no_change=10, **_kw()).fit(corpus)
    assert m.epoch_ == 4 and m.stop_reason_ == "max_epochs" and m.best_epoch_ == 2
    train, _ = corpus.split(0.1, seed=0)
    at2 = DAPPER(max_epochs=2, **_kw()).fit(train)
    np.testing.assert_array_equal(m.lambda_, at2.lambda_)
    np.testing.assert_array_equal(m.alpha_, at2.alpha_)
    # continuing in memory trains on from epoch 4, exactly as an uninterrupted 6-epoch fit
    m.max_epochs = 6
    m.fit(corpus, resume=True)
    through = DAPPER(max_epochs=6, **_kw()).fit(train)
    assert [h["elbo"] for h in m.history_] == pytest.approx([h["elbo"] for h in through.history_], rel=1e-12)
    assert m.best_epoch_ == 2  # scores -4.7, -4.8 did not beat epoch 2: its globals again
    np.testing.assert_array_equal(m.lambda_, at2.lambda_)


def test_improvement_resets_patience(corpus, monkeypatch):
    _scripted_scores(monkeypatch, [-5.0, -5.1, -4.0, -4.1, -4.2, -4.3])
    m = DAPPER(max_epochs=6, early_stopping=True, n_iter_no_change=2, **_kw()).fit(corpus)
    assert m.epoch_ == 5 and m.best_epoch_ == 3 and m.stop_reason_ == "early_stopping"


def test_checkpoint_after_early_stop_holds_the_best_epoch(corpus, monkeypatch, tmp_path):
    _scripted_scores(monkeypatch, [-5.0, -4.0, -4.5, -4.6])
    ck = tmp_path / "ck.npz"
    m = DAPPER(max_epochs=6, early_stopping=True, n_iter_no_change=2, **_kw()).fit(corpus, checkpoint=ck)
    back = DAPPER.load(ck)
    np.testing.assert_array_equal(back.lambda_, m.lambda_)
    np.testing.assert_array_equal(back.alpha_, m.alpha_)


@pytest.mark.parametrize("extra, msg", [
    (dict(batch_size=20), "full-batch"),
    (dict(validation_fraction=0.0), "validation_fraction"),
    (dict(validation_fraction=1.5), "validation_fraction"),
    (dict(n_iter_no_change=0), "n_iter_no_change"),
    (dict(early_stopping="yes"), "early_stopping"),
])
def test_bad_settings_are_refused(corpus, extra, msg):
    with pytest.raises(ValueError, match=msg):
        DAPPER(max_epochs=2, **_kw(early_stopping=extra.pop("early_stopping", True), **extra)).fit(corpus)


def test_no_validation_document_is_refused():
    # every author has one document: Corpus.split keeps them all in training
    c, _ = make_dap_corpus(n_authors=12, docs_per_author=1, n_topics=2, n_personas=2, n_words=30,
                           n_steps=2, doc_length=20, seed=0)
    with pytest.raises(ValueError, match="no validation document"):
        DAPPER(max_epochs=2, early_stopping=True, **_kw()).fit(c)


def test_cli_flag_and_refusal_on_shards(tmp_path, capsys):
    from fastprob.cli import main

    c, _ = make_dap_corpus(n_authors=15, docs_per_author=8, n_topics=3, n_personas=2, n_words=50,
                           n_steps=2, doc_length=25, seed=1)
    path = tmp_path / "c"
    c.save(str(path))
    out = tmp_path / "run"
    main(["dapper", "fit", "--corpus", str(path), "--topics", "3", "--personas", "2", "--epochs", "3",
          "--tol", "0", "--early-stopping", "--patience", "5", "--out", str(out)])
    import json

    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["params"]["early_stopping"] is True
    assert all("val_pwll" in h for h in metrics["history"]) and metrics["best_epoch"] >= 1
    with pytest.raises(SystemExit, match="early-stopping"):
        main(["dapper", "fit", "--corpus", str(path), "--backend", "dask", "--early-stopping",
              "--out", str(tmp_path / "run2")])
