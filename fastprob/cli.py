"""The ``fastprob`` command line.

    fastprob backends                          which backend each op uses, and why; the drop-in adapters
    fastprob corpus build --corpus sotu|FILE --out DIR   build and save a corpus
    fastprob corpus info DIR                   summary of a saved corpus
    fastprob dapper fit --corpus sotu|DIR|FILE [...]    train DAPPER, write model + reports
    fastprob dapper report MODEL               reports of a saved model
    fastprob flows train --data digits         train an image flow (RealNVP / Glow)
    fastprob flows train --compress ppca --latent-fraction F    a compressive flow (PPCA/VAE step)
    fastprob flows compress MODEL --latent-fraction F   closed-form PPCA on a trained flow's latents
    fastprob gbnf train --data moons           boosted flows on a 2-D toy density
    fastprob gbnf match --energy U1            boosted density matching by reverse KL
    fastprob psr train --data fashion-mnist --scale 4   probabilistic super-resolution flow
    fastprob psr student-teacher               thesis table 11 on 2-D teachers
    fastprob bench [--tier quick|full] [--check]  benchmark suites (source checkout)
    fastprob gbnf vae --data digits            VAE with a boosted flow posterior
"""
from __future__ import annotations

import argparse
import json
import os
import sys

from ._argtypes import nonnegative_int, positive_int, time_width


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
    p.add_argument("--max-features", type=positive_int, default=None, help="vocabulary size (top words)")
    p.add_argument("--min-words", type=nonnegative_int, default=None, help="drop documents with fewer tokens")
    p.add_argument("--time-mode", choices=["absolute", "relative"], default=None)
    _time_args(p, default=None)


_TIME_HELP = ("time-step width: auto (calendar years, months, weeks or days chosen from the span of the "
              "timestamps; the default for records), year | month | week | day (calendar periods in UTC, "
              "optionally a count: '4years', '3months'), or a number of timestamp units (days for dates)")


def _time_args(p, default):
    p.add_argument("--time-width", type=time_width, default=default, help=_TIME_HELP)
    p.add_argument("--time-steps", type=positive_int, default=None,
                   help="target number of time steps: with --time-width auto, the calendar unit and count "
                        "whose number of steps is closest to it without exceeding it")


def _build_kw(a):
    tw = a.time_width
    if a.time_steps is not None and tw is None:
        tw = "auto"  # a target number of steps replaces a loader's own default width
    return dict(max_features=a.max_features, min_words=a.min_words, time_mode=a.time_mode,
                time_width=tw, time_steps=a.time_steps)


def cmd_backends(a):
    from . import show_backends
    from .compat._report import show_adapters

    show_backends()
    show_adapters()


def _changelog_corpus(path, **build_kw):
    """A corpus from the changelogs under ``path``: GNU ``ChangeLog*`` files and Debian
    ``changelog.Debian.gz`` files (one record per dated entry; yearly steps by default)."""
    import glob

    from .corpus import build_corpus
    from .datasets import debian_changelog_records, gnu_changelog_records

    if not os.path.exists(path):
        raise SystemExit(f"fastprob: {path} not found")
    recs = []
    try:
        recs += gnu_changelog_records(path)  # a directory, a ChangeLog file or a source tarball
    except FileNotFoundError:
        pass
    except ValueError as exc:  # an unreadable tarball
        raise SystemExit(f"fastprob: {exc}") from exc
    if os.path.isdir(path):
        recs += debian_changelog_records(os.path.join(glob.escape(path), "*", "changelog.Debian.gz"))
    if not recs:
        raise SystemExit(f"fastprob: no dated ChangeLog or changelog.Debian.gz entries under {path}")
    kw = {k: v for k, v in build_kw.items() if v is not None}
    kw.setdefault("time_width", "auto" if kw.get("time_steps") else "year")  # calendar years
    kw.setdefault("min_words", 5)
    return build_corpus(recs, **kw)


def cmd_corpus_build(a):
    from .corpus import summary
    from .corpus.timebins import summary_line

    if getattr(a, "changelog", None):
        c = _changelog_corpus(a.changelog, **_build_kw(a))
    else:
        c = _load_corpus_arg(a.corpus, **_build_kw(a))
    print(c)
    print(summary_line(c.report.get("time_bins") or c.time_bins()))
    print("dropped:", summary(c.report))
    if a.out:
        c.save(a.out, shard_docs=a.shard_docs)
        print(f"saved to {a.out}")


def cmd_corpus_build_shards(a):
    from .corpus import build_shards, read_csv, read_jsonl
    from .corpus.timebins import summary_line

    if not os.path.exists(a.input):
        raise SystemExit(f"fastprob: {a.input} not found")
    reader = read_jsonl if a.input.endswith(".jsonl") else read_csv
    rep = build_shards(lambda: reader(a.input), a.out, shard_docs=a.shard_docs, max_features=a.max_features,
                       min_df=a.min_df, min_words=a.min_words, time_mode=a.time_mode, time_width=a.time_width,
                       time_steps=a.time_steps, total_bytes=os.path.getsize(a.input))
    print(f"{rep['documents']} documents, {rep['tokens_kept']} tokens, vocabulary {rep['vocabulary']}; "
          f"passes {rep['pass1_seconds']:.1f}s + {rep['pass2_seconds']:.1f}s; wrote {a.out}")
    print(summary_line(rep["time_bins"]))


def cmd_corpus_info(a):
    from .corpus import ShardSet

    from .corpus.timebins import summary_line

    ss = ShardSet(a.path)
    c = ss.load()
    print(c)
    print(summary_line(c.time_bins()))
    if ss.n_shards == 0 or c.n_docs == 0:
        print("(the corpus is empty: no documents)")
    print(json.dumps({"shards": ss.n_shards, "report": c.report}, indent=1, default=str)[:2000])


def main(argv=None):
    argv = list(sys.argv[1:] if argv is None else argv)
    debug = "--debug" in argv  # accepted anywhere on the line
    argv = [x for x in argv if x != "--debug"]
    ap = argparse.ArgumentParser(prog="fastprob", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--debug", action="store_true", help="show the full traceback of an error")
    sub = ap.add_subparsers(dest="cmd", required=True)
    sub.add_parser("backends", help="show which backend each op uses").set_defaults(fn=cmd_backends)

    pc = sub.add_parser("corpus", help="build / inspect corpora").add_subparsers(dest="sub", required=True)
    b = pc.add_parser("build", help="build a corpus and save it as shards")
    _corpus_args(b)
    b.add_argument("--changelog", metavar="DIR", default=None,
                   help="build from the GNU ChangeLog* and Debian changelog.Debian.gz files under DIR")
    b.add_argument("--out", help="directory to save the corpus to (new, empty, or a fastprob corpus to replace)")
    b.add_argument("--shard-docs", type=positive_int, default=None, help="documents per shard")
    b.set_defaults(fn=cmd_corpus_build)
    bs = pc.add_parser("build-shards", help="stream a records file too large for memory into shards (2 passes)")
    bs.add_argument("--input", required=True, help="records .jsonl or .csv (author, timestamp, text)")
    bs.add_argument("--out", required=True, help="new, empty, or a fastprob corpus to replace")
    bs.add_argument("--shard-docs", type=positive_int, default=50000)
    bs.add_argument("--max-features", type=positive_int, default=10000)
    bs.add_argument("--min-df", type=positive_int, default=2)
    bs.add_argument("--min-words", type=nonnegative_int, default=10)
    bs.add_argument("--time-mode", choices=["absolute", "relative"], default="relative")
    _time_args(bs, default="auto")
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
    for mod in ("fastprob.flows.cli", "fastprob.models.cli", "fastprob.models.psr_cli", "fastprob.benchcmd"):
        try:
            __import__(mod, fromlist=["add_commands"]).add_commands(sub)
        except ImportError:
            pass
    a = ap.parse_args(argv)
    if debug:
        return a.fn(a)
    try:
        return a.fn(a)
    except KeyboardInterrupt:
        print("fastprob: interrupted", file=sys.stderr)
        return 130
    except Exception as exc:  # noqa: BLE001  (every error: one clear line, no traceback)
        print(_hint(exc), file=sys.stderr)
        print(f"fastprob: error: {_one_line(exc)}", file=sys.stderr)
        return 1


def _one_line(exc: BaseException) -> str:
    msg = " ".join(str(exc).split()) or "(no message)"
    return msg if isinstance(exc, (ValueError, OSError)) else f"{type(exc).__name__}: {msg}"


def _hint(exc: BaseException) -> str:
    """A line on what to try, chosen by the kind of error (printed before the error line)."""
    from ._dispatch import BackendUnavailable

    if isinstance(exc, MemoryError):
        h = "out of memory: try a smaller corpus, --batch-size, or fewer --topics"
    elif isinstance(exc, BackendUnavailable):
        h = "'fastprob backends' shows which backends are available and why"
    elif isinstance(exc, ImportError):
        h = "an optional dependency is missing: install the extra the message names"
    elif isinstance(exc, ConnectionError):
        h = "check the --address (a Dask scheduler prints its tcp:// address when it starts)"
    elif isinstance(exc, FileNotFoundError):
        h = "check the path"
    else:
        h = "check the input and options named below"
    return f"fastprob: hint: {h} (run again with --debug for the traceback)"


if __name__ == "__main__":
    sys.exit(main())
