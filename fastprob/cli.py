"""The ``fastprob`` command line.

    fastprob backends                          which backend each op uses, and why
    fastprob corpus build --corpus sotu|FILE --out DIR   build and save a corpus
    fastprob corpus info DIR                   summary of a saved corpus
    fastprob dapper fit --corpus sotu|DIR|FILE [...]    train DAPPER, write model + reports
    fastprob dapper report MODEL               reports of a saved model
    fastprob flows train --data digits         train an image flow (RealNVP / Glow)
    fastprob gbnf train --data moons           boosted flows on a 2-D toy density
    fastprob gbnf match --energy U1            boosted density matching by reverse KL
    fastprob gbnf vae --data digits            VAE with a boosted flow posterior
"""
from __future__ import annotations

import argparse
import json
import os
import sys


def _load_corpus_arg(spec: str, **build_kw):
    """'sotu', a saved corpus directory, a .jsonl/.csv of records or a DAPPER .txt file."""
    from .corpus import Corpus, build_corpus, read_csv, read_dapper_text, read_jsonl

    if spec == "sotu":
        from .datasets import load_sotu

        return load_sotu(**{k: v for k, v in build_kw.items() if v is not None})
    if spec.startswith("dap:"):  # dap:N_AUTHORS  -> a sampled DAP corpus
        from .datasets import make_dap_corpus

        return make_dap_corpus(n_authors=int(spec[4:] or 100), seed=0)[0]
    if os.path.isdir(spec):
        return Corpus.load(spec)
    if not os.path.exists(spec):
        raise SystemExit(f"fastprob: corpus {spec!r} not found (use 'sotu', a saved corpus directory, "
                         "a .jsonl/.csv file of author,timestamp,text records or a DAPPER .txt file)")
    kw = {k: v for k, v in build_kw.items() if v is not None}
    if spec.endswith(".jsonl"):
        return build_corpus(read_jsonl(spec), **kw)
    if spec.endswith(".csv"):
        return build_corpus(read_csv(spec), **kw)
    if spec.endswith(".txt"):
        vocab = os.path.join(os.path.dirname(spec), "vocab.txt")
        return read_dapper_text(spec, vocab if os.path.exists(vocab) else None)
    raise SystemExit(f"fastprob: cannot tell the format of {spec!r} (.jsonl, .csv, .txt or a directory)")


def _corpus_args(p):
    p.add_argument("--corpus", default="sotu", help="sotu | saved corpus DIR | records .jsonl/.csv | DAPPER .txt")
    p.add_argument("--max-features", type=int, default=None, help="vocabulary size (top words)")
    p.add_argument("--min-words", type=int, default=None, help="drop documents with fewer tokens")
    p.add_argument("--time-mode", choices=["absolute", "relative"], default=None)
    p.add_argument("--time-width", type=float, default=None, help="time-step width in timestamp units")


def _build_kw(a):
    return dict(max_features=a.max_features, min_words=a.min_words, time_mode=a.time_mode,
                time_width=a.time_width)


def cmd_backends(a):
    from . import show_backends

    show_backends()


def cmd_corpus_build(a):
    from .corpus import summary

    c = _load_corpus_arg(a.corpus, **_build_kw(a))
    print(c)
    print("dropped:", summary(c.report))
    if a.out:
        c.save(a.out, shard_docs=a.shard_docs)
        print(f"saved to {a.out}")


def cmd_corpus_build_shards(a):
    from .corpus import build_shards, read_csv, read_jsonl

    if not os.path.exists(a.input):
        raise SystemExit(f"fastprob: {a.input} not found")
    reader = read_jsonl if a.input.endswith(".jsonl") else read_csv
    rep = build_shards(lambda: reader(a.input), a.out, shard_docs=a.shard_docs, max_features=a.max_features,
                       min_df=a.min_df, min_words=a.min_words, time_mode=a.time_mode, time_width=a.time_width,
                       total_bytes=os.path.getsize(a.input))
    print(f"{rep['documents']} documents, {rep['tokens_kept']} tokens, vocabulary {rep['vocabulary']}; "
          f"passes {rep['pass1_seconds']:.1f}s + {rep['pass2_seconds']:.1f}s; wrote {a.out}")


def cmd_corpus_info(a):
    from .corpus import ShardSet

    ss = ShardSet(a.path)
    c = ss.load()
    print(c)
    print(json.dumps({"shards": ss.n_shards, "report": c.report}, indent=1, default=str)[:2000])


def main(argv=None):
    ap = argparse.ArgumentParser(prog="fastprob", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="cmd", required=True)
    sub.add_parser("backends", help="show which backend each op uses").set_defaults(fn=cmd_backends)

    pc = sub.add_parser("corpus", help="build / inspect corpora").add_subparsers(dest="sub", required=True)
    b = pc.add_parser("build", help="build a corpus and save it as shards")
    _corpus_args(b)
    b.add_argument("--out", help="directory to save the corpus to")
    b.add_argument("--shard-docs", type=int, default=None, help="documents per shard")
    b.set_defaults(fn=cmd_corpus_build)
    bs = pc.add_parser("build-shards", help="stream a records file too large for memory into shards (2 passes)")
    bs.add_argument("--input", required=True, help="records .jsonl or .csv (author, timestamp, text)")
    bs.add_argument("--out", required=True)
    bs.add_argument("--shard-docs", type=int, default=50000)
    bs.add_argument("--max-features", type=int, default=10000)
    bs.add_argument("--min-df", type=int, default=2)
    bs.add_argument("--min-words", type=int, default=10)
    bs.add_argument("--time-mode", choices=["absolute", "relative"], default="relative")
    bs.add_argument("--time-width", type=float, default=7.0, help="bin width in timestamp units (days: 7 = weeks)")
    bs.set_defaults(fn=cmd_corpus_build_shards)
    i = pc.add_parser("info", help="summarize a saved corpus")
    i.add_argument("path")
    i.set_defaults(fn=cmd_corpus_info)

    try:
        from .topics import cli as topics_cli
    except ImportError:
        topics_cli = None
    if topics_cli is not None:
        topics_cli.add_commands(sub, _corpus_args, _build_kw, _load_corpus_arg)
    for mod in ("fastprob.flows.cli", "fastprob.models.cli"):
        try:
            __import__(mod, fromlist=["add_commands"]).add_commands(sub)
        except ImportError:
            pass
    a = ap.parse_args(argv)
    return a.fn(a)


if __name__ == "__main__":
    sys.exit(main())
