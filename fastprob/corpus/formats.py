"""Text formats: JSONL / CSV records, and the published DAPPER text format.

Records are dicts ``{"author": ..., "timestamp": ..., "text": ...}``.

DAPPER text format (the original code's): the first line is T; then, for each time step,
a line with its timestamp, a line with its number of documents, and one line per
document ``author n_unique id:count id:count ...``.  The vocabulary is a separate file
with one word per line (line i = word id i).
"""
from __future__ import annotations

import csv
import json

import numpy as np

from .._io import atomic_write  # noqa: F401  (re-exported: fastprob.corpus.formats.atomic_write)
from .corpus import Corpus, CorpusError

_INT32_MAX = 2**31 - 1


class UndecodableText(bytes):
    """Raw bytes of a record that is not valid UTF-8, with where it came from (``file:line``);
    the builders skip and count it (``records_skipped["undecodable"]``)."""

    where: str = ""


def read_jsonl(path):
    """Yield records from a JSON-lines file (one object per line; blank lines ignored).

    A line that is not valid UTF-8 is still yielded, with its text replaced by the raw line
    as :class:`UndecodableText`, so the builder skips and counts it and names the line.
    """
    with open(path, "rb") as f:
        for i, raw in enumerate(f, 1):
            try:
                line = raw.decode("utf-8")
                bad_utf8 = False
            except UnicodeDecodeError:
                line = raw.decode("utf-8", errors="replace")
                bad_utf8 = True
            if not line.strip():
                continue
            try:
                r = json.loads(line)
            except json.JSONDecodeError as exc:
                raise CorpusError(f"{path}:{i}: not valid JSON ({exc.msg})") from None
            if not isinstance(r, dict):
                raise CorpusError(f"{path}:{i}: each line must be a JSON object with author/timestamp/text")
            if bad_utf8:
                text = UndecodableText(raw)
                text.where = f"{path}:{i}"
                r = dict(r, text=text)
            yield r


def write_jsonl(records, path) -> int:
    n = 0
    with atomic_write(path) as f:
        for r in records:
            if not isinstance(r, dict):
                a, t, x = r
                r = {"author": a, "timestamp": t, "text": x}
            f.write(json.dumps(r, ensure_ascii=False, default=str) + "\n")
            n += 1
    return n


def read_csv(path, author="author", timestamp="timestamp", text="text"):
    """Yield records from a CSV file with a header naming the three columns."""
    with open(path, encoding="utf-8", newline="") as f:
        rd = csv.DictReader(f)
        missing = {author, timestamp, text} - set(rd.fieldnames or ())
        if missing:
            raise CorpusError(f"{path}: CSV header lacks columns {sorted(missing)} "
                              f"(found {rd.fieldnames}); pass author=/timestamp=/text= to name them")
        for row in rd:
            yield {"author": row[author], "timestamp": row[timestamp], "text": row[text]}


def write_csv(records, path) -> int:
    n = 0
    with atomic_write(path) as f:
        w = csv.writer(f)
        w.writerow(["author", "timestamp", "text"])
        for r in records:
            if isinstance(r, dict):
                r = (r.get("author"), r.get("timestamp"), r.get("text"))
            w.writerow(r)
            n += 1
    return n


def write_dapper_text(c: Corpus, path, vocab_path=None) -> None:
    """Write ``c`` in the DAPPER text format (and its vocabulary, one word per line)."""
    order = np.lexsort((np.arange(c.n_docs), c.times))
    with atomic_write(path) as f:
        f.write(f"{c.n_steps}\n")
        bounds = np.searchsorted(c.times[order], np.arange(c.n_steps + 1))
        for t in range(c.n_steps):
            docs = order[bounds[t]:bounds[t + 1]]
            f.write(f"{float(c.time_values[t])!r}\n{docs.shape[0]}\n")
            for d in docs:
                a, b = c.indptr[d], c.indptr[d + 1]
                pairs = " ".join(f"{i}:{n}" for i, n in zip(c.indices[a:b].tolist(), c.counts[a:b].tolist()))
                f.write(f"{c.authors[d]} {b - a} {pairs}\n")
    if vocab_path is not None:
        with atomic_write(vocab_path) as f:
            for w in c.vocab:
                f.write(w + "\n")


def read_dapper_text(path, vocab_path=None, n_words=None) -> Corpus:
    """Read a corpus in the DAPPER text format.

    Author tokens become author names (as written); time steps keep their timestamps.
    Without ``vocab_path`` the words are named ``w0, w1, ...`` and ``n_words`` (or the
    largest id + 1) sets the vocabulary size.
    """
    with open(path, encoding="utf-8") as f:
        lines = iter(enumerate(f, 1))

        def nxt(what):
            for i, line in lines:
                if line.strip():
                    return i, line.strip()
            raise CorpusError(f"{path}: file ends early (expected {what})")

        i, line = nxt("the number of time steps")
        try:
            T = int(line)
        except ValueError:
            raise CorpusError(f"{path}:{i}: first line must be the number of time steps, got {line!r}") from None
        if T < 0:
            raise CorpusError(f"{path}:{i}: the number of time steps must be >= 0, got {T}")
        time_values, ptr, idx, cnt, authors, times = [], [0], [], [], [], []
        author_ids: dict = {}
        for t in range(T):
            i, line = nxt(f"the timestamp of step {t}")
            try:
                time_values.append(float(line))
                i, line = nxt(f"the document count of step {t}")
                n = int(line)
            except ValueError:
                raise CorpusError(f"{path}:{i}: expected a number, got {line!r}") from None
            if n < 0:
                raise CorpusError(f"{path}:{i}: the document count of step {t} must be >= 0, got {n}")
            for _ in range(n):
                i, line = nxt("a document line")
                parts = line.split()
                try:
                    a, u = parts[0], int(parts[1])
                    pairs = [p.split(":") for p in parts[2:]]
                    ids = [int(p[0]) for p in pairs]
                    cs = [int(p[1]) for p in pairs]
                except (IndexError, ValueError):
                    raise CorpusError(f"{path}:{i}: malformed document line {line[:80]!r} "
                                      "(expected 'author n_unique id:count ...')") from None
                if u != len(ids):
                    raise CorpusError(f"{path}:{i}: says {u} unique words but lists {len(ids)}")
                if len(set(ids)) != len(ids) or min(cs, default=1) <= 0:
                    raise CorpusError(f"{path}:{i}: repeated word ids or non-positive counts")
                if max(cs, default=0) > _INT32_MAX or min(ids, default=0) < 0 or max(ids, default=0) > _INT32_MAX:
                    raise CorpusError(f"{path}:{i}: a word count or id is out of range (counts and ids "
                                      f"must lie in [0, {_INT32_MAX}]; got counts up to {max(cs)} and "
                                      f"ids in [{min(ids)}, {max(ids)}])")
                o = np.argsort(ids)
                idx.extend(np.asarray(ids)[o].tolist())
                cnt.extend(np.asarray(cs)[o].tolist())
                ptr.append(len(idx))
                authors.append(author_ids.setdefault(a, len(author_ids)))
                times.append(t)
        for i, line in lines:
            if line.strip():
                raise CorpusError(f"{path}:{i}: the file continues after the {T} declared time steps "
                                  f"(a document count too small, or a wrong first line?): {line.strip()[:60]!r}")
    if vocab_path is not None:
        with open(vocab_path, encoding="utf-8") as f:
            vocab = [w.rstrip("\n") for w in f]
        while vocab and vocab[-1] == "":
            vocab.pop()
    else:
        V = n_words if n_words is not None else (max(idx) + 1 if idx else 0)
        vocab = [f"w{j}" for j in range(V)]
    tv = np.asarray(time_values, dtype=np.float64)
    times_a = np.asarray(times, dtype=np.int32)
    return Corpus(np.asarray(ptr, np.int64), np.asarray(idx, np.int32), np.asarray(cnt, np.int32),
                  np.asarray(authors, np.int32), times_a, tv[times_a] if len(times) else np.zeros(0),
                  vocab, list(author_ids), tv, time_mode="absolute", time_width=1.0,
                  time_origin=0.0)  # each step's timestamp is its own bin: floor(ts - 0) / 1
