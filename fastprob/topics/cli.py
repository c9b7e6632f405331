"""``fastprob dapper fit`` and ``fastprob dapper report``."""
from __future__ import annotations

import json
import os
import time

from .._argtypes import fraction, positive_float, positive_int


def add_commands(sub, corpus_args, build_kw, load_corpus):
    pd = sub.add_parser("dapper", help="the DAPPER topic model").add_subparsers(dest="sub", required=True)
    f = pd.add_parser("fit", help="train DAPPER and write the model, reports and metrics")
    corpus_args(f)
    f.add_argument("--topics", type=positive_int, default=25)
    f.add_argument("--personas", type=positive_int, default=15)
    f.add_argument("--regularization", type=float, default=0.0)
    f.add_argument("--process-noise", type=float, default=0.2)
    f.add_argument("--doc-noise", type=float, default=2.0)
    f.add_argument("--batch-size", type=positive_int, default=None, help="mini-batch size (default: full batch)")
    f.add_argument("--epochs", type=positive_int, default=30)
    f.add_argument("--tol", type=float, default=1e-4)
    f.add_argument("--local-tol", type=float, default=1e-3)
    f.add_argument("--local-solver", choices=["newton", "squarem", "cvi"], default="newton")
    f.add_argument("--test-fraction", type=fraction, default=0.1, help="held-out share of each author's documents")
    f.add_argument("--persona-shrinkage", type=float, default=0.0,
                   help="pull each persona's mean trajectory towards the personas' mean, as strongly as "
                        "this many documents per step (0: the spec's model; 20 raises held-out "
                        "likelihood but makes personas alike)")
    f.add_argument("--early-stopping", action="store_true",
                   help="set aside --validation-fraction of each author's training documents, stop when "
                        "their PWLL has not improved for --patience epochs and keep the best epoch")
    f.add_argument("--validation-fraction", type=fraction, default=0.1)
    f.add_argument("--patience", type=positive_int, default=3, help="epochs without improvement (--early-stopping)")
    f.add_argument("--time-budget", type=positive_float, default=None, help="seconds")
    f.add_argument("--jobs", type=positive_int, default=None, help="threads")
    f.add_argument("--seed", type=int, default=0)
    f.add_argument("--backend", choices=["numba", "numpy", "dask", "ray"], default=None,
                   help="E-step backend; dask/ray run on the shards of a saved corpus (--corpus DIR)")
    f.add_argument("--address", default=None, help="scheduler address of an existing cluster (dask/ray)")
    f.add_argument("--workers", type=positive_int, default=2, help="local cluster size when no --address")
    f.add_argument("--out", default="runs/dapper", help="output directory")
    f.add_argument("--resume", action="store_true", help="continue from OUT/checkpoint.npz")
    f.add_argument("--profile", action="store_true",
                   help="time each phase of every epoch: table at the end, metrics.json['profile'], OUT/phases.png")
    f.set_defaults(fn=lambda a: cmd_fit(a, build_kw, load_corpus))
    r = pd.add_parser("report", help="reports of a saved model")
    r.add_argument("model")
    r.add_argument("--out", default=None, help="directory (default: next to the model)")
    r.set_defaults(fn=cmd_report)


def cmd_fit(a, build_kw, load_corpus):
    from ..corpus import summary
    from .dapper import DAPPER
    from .evaluate import document_completion
    from .report import write_reports

    t0 = time.perf_counter()
    if a.backend in ("dask", "ray") or (a.batch_size and os.path.isdir(a.corpus) and a.test_fraction == 0):
        return _fit_shards(a)
    corpus = load_corpus(a.corpus, **build_kw(a))
    print(f"corpus: {corpus}  (dropped: {summary(corpus.report)})")
    train, test = corpus.split(a.test_fraction, seed=a.seed) if a.test_fraction > 0 else (corpus, None)
    os.makedirs(a.out, exist_ok=True)
    model = DAPPER(a.topics, a.personas, regularization=a.regularization, process_noise=a.process_noise,
                   doc_noise=a.doc_noise, batch_size=a.batch_size, max_epochs=a.epochs, tol=a.tol,
                   local_tol=a.local_tol, local_solver=a.local_solver, time_budget=a.time_budget,
                   n_jobs=a.jobs, random_state=a.seed, profile=a.profile, early_stopping=a.early_stopping,
                   validation_fraction=a.validation_fraction, n_iter_no_change=a.patience,
                   persona_shrinkage=a.persona_shrinkage)
    ckpt = os.path.join(a.out, "checkpoint.npz")
    model.fit(train, test=test, resume=a.resume, checkpoint=ckpt)
    model.save(os.path.join(a.out, "model.npz"))
    metrics = {"corpus": a.corpus, "train_documents": train.n_docs, "train_tokens": train.n_tokens,
               "epochs": model.epoch_, "stop_reason": getattr(model, "stop_reason_", None),
               "best_epoch": getattr(model, "best_epoch_", None),
               "train_elbo_per_word": model.history_[-1]["elbo_per_word"],
               "seconds": time.perf_counter() - t0, "history": model.history_,
               "params": model.get_params()}
    if test is not None and test.n_docs:
        dc = document_completion(model, test)
        metrics.update({"test_pwll": dc["pwll"], "test_perplexity": dc["perplexity"],
                        "test_elbo_per_word": model.elbo(test), "test_documents": test.n_docs})
    _profile_outputs(model, a.out, metrics)
    summ = write_reports(model, a.out, corpus=corpus, metrics=metrics)
    print(f"epochs: {model.epoch_} ({metrics['stop_reason']}), train ELBO/word "
          f"{metrics['train_elbo_per_word']:.4f}" + (f", held-out PWLL {metrics['test_pwll']:.4f}"
                                                     if "test_pwll" in metrics else ""))
    print(f"authors on one persona (>90%): {summ['share_single_persona']:.0%}; distinct topics among "
          f"personas' top-3: {summ['distinct_top3_topics']}")
    print(f"wrote {a.out}/model.npz, topics.txt, personas.png, authors.csv, persona_summary.json, metrics.json")


def _fit_shards(a):
    """Training straight from a saved shard set (streamed / distributed), no held-out split."""
    from ..corpus import ShardSet
    from .dapper import DAPPER
    from .report import write_reports

    if not os.path.isdir(a.corpus):
        raise SystemExit("fastprob: --backend dask/ray needs --corpus DIR of a saved corpus "
                         "(fastprob corpus build ... --out DIR or fastprob corpus build-shards)")
    if a.early_stopping:
        raise SystemExit("fastprob: --early-stopping needs a full-batch fit in one process (it holds out "
                         "validation documents of an in-memory corpus); drop --backend/--batch-size, or drop "
                         "--early-stopping and watch the held-out PWLL in metrics.json")
    ss = ShardSet(a.corpus)
    model = DAPPER(a.topics, a.personas, regularization=a.regularization, process_noise=a.process_noise,
                   doc_noise=a.doc_noise, batch_size=a.batch_size, max_epochs=a.epochs, tol=a.tol,
                   local_tol=a.local_tol, local_solver=a.local_solver, time_budget=a.time_budget, n_jobs=a.jobs,
                   random_state=a.seed, backend=a.backend, address=a.address, n_workers=a.workers,
                   profile=a.profile, persona_shrinkage=a.persona_shrinkage)
    os.makedirs(a.out, exist_ok=True)
    model.fit(ss, resume=a.resume, checkpoint=os.path.join(a.out, "checkpoint.npz"))
    model.save(os.path.join(a.out, "model.npz"))
    metrics = {"corpus": a.corpus, "epochs": model.epoch_, "history": model.history_, "params": model.get_params()}
    _profile_outputs(model, a.out, metrics)
    write_reports(model, a.out, metrics=metrics)
    print(f"epochs: {model.epoch_}, ELBO/word {model.history_[-1]['elbo_per_word']:.4f}; wrote {a.out}")


def _profile_outputs(model, out, metrics):
    """With --profile: per-phase totals into metrics["profile"] and the per-epoch plot phases.png."""
    from ..profiling import history_records, plot_phases, summarize

    recs = history_records(model.history_)
    if not recs:
        return
    metrics["profile"] = summarize(recs)
    path = plot_phases(recs, os.path.join(out, "phases.png"), "DAPPER: time per phase and epoch")
    print(f"wrote {path} (phase times per epoch)")


def cmd_report(a):
    from .dapper import DAPPER
    from .report import top_words, write_reports

    model = DAPPER.load(a.model)
    out = a.out or os.path.dirname(os.path.abspath(a.model))
    summ = write_reports(model, out)
    for k, ws in enumerate(top_words(model, 8)):
        print(f"topic {k:3d}: {' '.join(ws)}")
    print(json.dumps({k: v for k, v in summ.items() if k != "persona_top3_topics"}))
    print(f"wrote reports to {out}")
