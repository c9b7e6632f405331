"""Bad input in the corpus readers, builders and the command line (issue 11's cases 3, 8,
9, 11, 12, 14, 16, 18): a clear error naming the problem, or a skip that is counted."""
import json

import pytest

from fastprob.cli import main
from fastprob.corpus import CorpusError, ShardSet, build_corpus, build_shards, read_dapper_text, read_jsonl

TEXT = "apple banana cherry durian elder figgy grape honey"


def _run(capsys, *argv):
    code = main(list(argv))
    out = capsys.readouterr()
    return code, out.out, out.err


def test_mixed_timestamp_formats_are_rejected(tmp_path):
    """Case 3: dates and Unix seconds / years cannot share one axis."""
    for other in ("1326585600", "2012", 1326585600):
        recs = [("a", "2012-01-15", TEXT), ("b", other, TEXT)]
        with pytest.raises(CorpusError, match="mix dates"):
            build_corpus(recs, min_words=1, verbose=False)
        with pytest.raises(CorpusError, match="mix dates"):
            build_shards(lambda: iter(recs), tmp_path / "s", min_df=1, min_words=1, progress=False)
    # day numbers next to dates stay allowed (a day count is what a date becomes)
    c = build_corpus([("a", "2012-01-15", TEXT), ("b", 15360.0, TEXT)], min_words=1, time_width=1.0,
                     verbose=False)
    assert c.time_values.tolist() == [0.0, 6.0]
    # a placeholder date is a bad timestamp, skipped and counted
    c = build_corpus([("a", "2012-01-15", TEXT), ("b", "9999-12-31", TEXT)], min_words=1, verbose=False)
    assert c.n_docs == 1 and c.report["records_skipped"] == {"bad_timestamp": 1}
    # numbers only, but spanning more steps than can be allocated (years with Unix seconds)
    with pytest.raises(CorpusError, match="max_steps"):
        build_shards(lambda: iter([("a", 2012, TEXT), ("b", 1326585600, TEXT)]), tmp_path / "s",
                     min_df=1, min_words=1, progress=False)


def test_non_utf8_jsonl_lines_are_skipped_and_counted(tmp_path):
    """Case 8."""
    p = tmp_path / "r.jsonl"
    good = json.dumps({"author": "a", "timestamp": 1, "text": TEXT}).encode()
    bad = b'{"author": "b", "timestamp": 2, "text": "caf\xe9 apple banana"}'
    p.write_bytes(good + b"\n" + bad + b"\n" + good + b"\n")
    c = build_corpus(read_jsonl(p), min_words=1, verbose=False)
    assert c.n_docs == 2 and c.report["records_skipped"] == {"undecodable": 1}
    assert c.report["undecodable_at"] == [f"{p}:2"]
    with pytest.raises(CorpusError, match=r"r\.jsonl:2.*UTF-8"):
        build_corpus(read_jsonl(p), min_words=1, errors="raise", verbose=False)
    rep = build_shards(lambda: read_jsonl(p), tmp_path / "s", min_df=1, min_words=1, progress=False)
    assert rep["documents"] == 2 and rep["records_skipped"] == {"bad_record": 1}


def _dap(tmp_path, text):
    p = tmp_path / "c.txt"
    p.write_text(text)
    return p


def test_dap_text_errors(tmp_path):
    """Cases 9, 12, 16: extra document lines, huge counts, a negative step count."""
    ok = "1\n5.0\n2\nann 2 0:1 3:2\nbob 1 1:4\n"
    assert read_dapper_text(_dap(tmp_path, ok)).n_docs == 2
    with pytest.raises(CorpusError, match=r"c\.txt:6: the file continues after the 1 declared"):
        read_dapper_text(_dap(tmp_path, ok + "cat 1 2:1\n"))
    with pytest.raises(CorpusError, match=r"c\.txt:4: a word count or id is out of range"):
        read_dapper_text(_dap(tmp_path, "1\n5.0\n1\nann 1 0:3000000000\n"))
    with pytest.raises(CorpusError, match=r"c\.txt:1: the number of time steps must be >= 0"):
        read_dapper_text(_dap(tmp_path, "-1\n"))
    with pytest.raises(CorpusError, match=r"c\.txt:3: the document count"):
        read_dapper_text(_dap(tmp_path, "1\n5.0\n-2\n"))


def test_nothing_left_after_pruning(tmp_path):
    """Case 11: all stop words, or no vocabulary at all."""
    recs = [("a", 1, "the and of"), ("b", 2, "a the is")]
    with pytest.raises(CorpusError, match="all 2 documents were dropped: no word survived"):
        build_corpus(recs, min_words=1, verbose=False)
    with pytest.raises(CorpusError, match="all 2 documents were dropped"):
        build_shards(lambda: iter(recs), tmp_path / "s", min_df=1, min_words=1, progress=False)
    with pytest.raises(ValueError, match="max_features must be a positive integer"):
        build_corpus([("a", 1, TEXT)], max_features=0, verbose=False)
    with pytest.raises(CorpusError, match="no document has min_words=50"):
        build_corpus([("a", 1, TEXT)], min_words=50, verbose=False)


def test_cli_corpus_commands(tmp_path, capsys):
    """build --out, build-shards and info, end to end (in-process)."""
    p = tmp_path / "r.jsonl"
    with open(p, "w") as f:
        for i in range(30):
            f.write(json.dumps({"author": f"a{i % 3}", "timestamp": f"2020-01-{1 + i % 28:02d}",
                                "text": TEXT}) + "\n")
    code, out, _ = _run(capsys, "corpus", "build", "--corpus", str(p), "--out", str(tmp_path / "c"),
                        "--min-words", "1", "--shard-docs", "7")
    assert code is None and "saved to" in out
    ss = ShardSet(tmp_path / "c")
    assert ss.n_docs == 30 and ss.n_shards == 5
    code, out, _ = _run(capsys, "corpus", "build-shards", "--input", str(p), "--out", str(tmp_path / "s"),
                        "--min-df", "1", "--min-words", "1", "--shard-docs", "10")
    assert code is None and ShardSet(tmp_path / "s").n_docs == 30
    code, out, _ = _run(capsys, "corpus", "info", str(tmp_path / "c"))
    assert code is None and "n_docs=30" in out and '"shards": 5' in out
    # case 14: an empty shard set (no shards at all) is summarized, not an IndexError
    build_shards(lambda: iter([]), tmp_path / "e", progress=False)
    code, out, _ = _run(capsys, "corpus", "info", str(tmp_path / "e"))
    assert code is None and "n_docs=0" in out and "empty" in out
    # case 19's companion: --out pointing at a folder of other files loses nothing
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "data.csv").write_text("precious")
    code, _, err = _run(capsys, "corpus", "build", "--corpus", str(p), "--out", str(tmp_path / "mine"),
                        "--min-words", "1")
    assert code == 1 and "not a fastprob corpus" in err.strip().splitlines()[-1]
    assert (tmp_path / "mine" / "data.csv").read_text() == "precious"


@pytest.mark.parametrize("argv, msg", [
    (["dapper", "fit", "--jobs", "-1"], "--jobs: must be a positive integer"),
    (["dapper", "fit", "--test-fraction", "-0.1"], "--test-fraction: must lie in [0, 1)"),
    (["dapper", "fit", "--time-budget", "-5"], "--time-budget: must be a positive number"),
    (["corpus", "build", "--max-features", "0"], "--max-features: must be a positive integer"),
])
def test_cli_rejects_bad_numbers(argv, msg, capsys):
    """Case 16."""
    with pytest.raises(SystemExit) as e:
        main(argv)
    assert e.value.code == 2 and msg in capsys.readouterr().err


def test_cli_errors_are_one_clear_line(tmp_path, capsys):
    """Case 18: last line says what is wrong, a hint, exit 1, a traceback only with --debug."""
    p = _dap(tmp_path, "-1\n")
    code, _, err = _run(capsys, "corpus", "build", "--corpus", str(p))
    lines = err.strip().splitlines()
    assert code == 1 and "Traceback" not in err and len(lines) == 2
    assert lines[-1].startswith("fastprob: error: ") and "number of time steps must be >= 0" in lines[-1]
    assert lines[0].startswith("fastprob: hint: ") and "--debug" in lines[0]
    with pytest.raises(CorpusError, match="number of time steps"):
        main(["corpus", "build", "--corpus", str(p), "--debug"])
    # a corrupted corpus directory: the error names the problem
    (tmp_path / "c").mkdir()
    (tmp_path / "c" / "manifest.json").write_text("{not json")
    code, _, err = _run(capsys, "corpus", "info", str(tmp_path / "c"))
    assert code == 1 and "manifest.json is corrupted" in err.strip().splitlines()[-1]
