"""Documents -> vocabulary -> sparse counts; readers, writers and on-disk shards."""
from .build import build_corpus, english_stopwords, summary, to_timestamp
from .corpus import Corpus, CorpusError
from .merge import merge
from .formats import (read_csv, read_dapper_text, read_jsonl, write_csv, write_dapper_text,
                      write_jsonl)
from .shards import ShardError, ShardSet, concat, load_corpus, save_corpus

__all__ = ["merge", "Corpus", "CorpusError", "ShardError", "ShardSet", "build_corpus", "concat",
           "english_stopwords", "load_corpus", "read_csv", "read_dapper_text", "read_jsonl",
           "save_corpus", "summary", "to_timestamp", "write_csv", "write_dapper_text", "write_jsonl"]
from .stream import build_shards  # noqa: E402

__all__.append("build_shards")
