"""Time binning: calendar units against Python's datetime, the automatic choice, both
builders alike, like=train, save/load, merge, the command line and bad input."""
import datetime as dt
import json
import math

import numpy as np
import pytest

from fastprob.corpus import Corpus, CorpusError, build_corpus, build_shards, merge
from fastprob.corpus.timebins import choose, parse_time_width

EPOCH = dt.date(1970, 1, 1)
WORDS = "apple banana cherry durian elderberry fig grape honeydew kiwi lemon mango".split()


def _text(rng):
    return " ".join(rng.choice(WORDS, size=6))


# ---- an independent oracle: calendar periods with Python's datetime ------------------
def _date(days):
    return EPOCH + dt.timedelta(days=math.floor(days))


def _period(d, unit):
    if unit == "year":
        return d.year
    if unit == "month":
        return d.year * 12 + d.month - 1
    if unit == "week":  # ISO weeks start on Monday; blocks count from Monday 1969-12-29
        return ((d - dt.timedelta(days=d.weekday())) - dt.date(1969, 12, 29)).days // 7
    return (d - EPOCH).days  # blocks of days count from 1970-01-01


def _period_start(p, unit):
    if unit == "year":
        return dt.date(p, 1, 1)
    if unit == "month":
        return dt.date(p // 12, p % 12 + 1, 1)
    if unit == "week":
        return dt.date(1969, 12, 29) + dt.timedelta(weeks=p)
    return EPOCH + dt.timedelta(days=p)


def _oracle(days, unit, m):
    """(bin of each timestamp, day number of bin 0's start) for blocks of m calendar units."""
    first = _period(_date(min(days)), unit) // m
    bins = [_period(_date(t), unit) // m - first for t in days]
    return bins, (_period_start(first * m, unit) - EPOCH).days


def _doc_bins(c):
    return c.time_values[c.times]


@pytest.mark.parametrize("unit,m", [("year", 1), ("year", 4), ("year", 10), ("month", 1), ("month", 3),
                                    ("week", 1), ("week", 2), ("day", 1), ("day", 5)])
def test_calendar_bins_match_datetime(unit, m):
    rng = np.random.default_rng(7)
    lo, hi = (dt.date(1890, 1, 1) - EPOCH).days, (dt.date(2090, 1, 1) - EPOCH).days
    if unit in ("week", "day"):
        hi = lo + 3000
    days = rng.uniform(lo, hi, size=300)
    days[:4] = [lo + 0.999999, lo + 0.5, hi - 1e-7, lo + 59.0]  # edges, near midnight
    recs = [(f"a{i % 9}", float(t), _text(rng)) for i, t in enumerate(days)]
    spec = unit if m == 1 else f"{m} {unit}s"
    c = build_corpus(recs, min_words=1, time_width=spec, verbose=False)
    want, origin = _oracle(days, unit, m)
    np.testing.assert_array_equal(_doc_bins(c), want)
    assert c.time_origin == origin and c.time_width == spec
    s = c.report["time_bins"]
    assert (s["unit"], s["multiple"], s["steps"]) == (unit, m, len(set(want)))
    assert s["first_bin_start"] == str(dt.date.fromordinal(EPOCH.toordinal() + origin))


def test_dates_with_time_zones_are_binned_in_utc():
    recs = [("a", "2019-12-31T23:30:00-05:00", "apple banana"),   # 2020-01-01 04:30 UTC
            ("b", dt.datetime(2019, 6, 30, 23, 0, tzinfo=dt.timezone(dt.timedelta(hours=-2))), "fig kiwi"),
            ("c", "2019-03-01", "cherry lemon")]
    c = build_corpus(recs, min_words=1, time_width="month", verbose=False)
    assert _doc_bins(c).tolist() == [10.0, 4.0, 0.0]  # 2020-01, 2019-07, 2019-03
    c = build_corpus(recs, min_words=1, time_width="year", verbose=False)
    assert _doc_bins(c).tolist() == [1.0, 0.0, 0.0]


def test_numeric_width_is_unchanged():
    """An explicit number bins from the first timestamp, as fastprob always did."""
    rng = np.random.default_rng(3)
    days = rng.uniform(15000, 16000, size=80)
    recs = [("a", float(t), _text(rng)) for t in days]
    for w in (1.0, 7.0, 365.25):
        c = build_corpus(recs, min_words=1, time_width=w, verbose=False)
        want = [math.floor((t - days.min()) / w + 1e-9) for t in days]
        np.testing.assert_array_equal(_doc_bins(c), want)
        assert c.time_origin == days.min() and c.time_width == w


def _span(d0, d1, n=40, mode="absolute"):
    rng = np.random.default_rng(0)
    a, b = (dt.date.fromisoformat(d0) - EPOCH).days, (dt.date.fromisoformat(d1) - EPOCH).days
    days = np.concatenate([[a, b], rng.uniform(a, b, size=n - 2)])
    return [(f"a{i % 3}" if mode == "absolute" else "solo", str(_date(t)), _text(rng)) for i, t in enumerate(days)]


@pytest.mark.parametrize("d0,d1,unit", [("1990-05-01", "2019-02-01", "year"), ("2009-03-01", "2018-12-01", "month"),
                                        ("2016-01-10", "2017-03-01", "month"), ("2016-01-10", "2016-07-01", "week"),
                                        ("2016-01-10", "2016-02-15", "day")])
def test_auto_picks_the_unit_from_the_span(d0, d1, unit):
    c = build_corpus(_span(d0, d1), min_words=1, verbose=False)
    s = c.report["time_bins"]
    assert (s["unit"], s["multiple"], s["chosen"]) == (unit, 1, "auto") and c.time_width == unit
    # relative mode: the same choice from the longest time since an author's first document
    c = build_corpus(_span(d0, d1, mode="relative"), min_words=1, time_mode="relative", verbose=False)
    assert c.time_width == unit


def test_auto_on_plain_numbers_keeps_width_one():
    recs = [("a", float(t), "apple banana") for t in (3, 5, 5, 40)]
    c = build_corpus(recs, min_words=1, verbose=False)
    assert c.time_width == 1.0 and c.time_values.tolist() == [0.0, 2.0, 37.0]
    c = build_corpus(recs, min_words=1, time_steps=10, verbose=False)
    assert c.time_width == 5.0 and c.report["time_bins"]["bins_spanned"] == 8  # 1, 2, 5: 5 gives 8 <= 10


@pytest.mark.parametrize("N,width,spanned", [(1, "10 years", 1), (3, "4 years", 2), (8, "year", 8),
                                             (20, "6 months", 16), (100, "month", 94), (5000, "day", 2858)])
def test_target_number_of_steps(N, width, spanned):
    """2012-03-05 .. 2019-12-31: the readable block with the most bins not above N."""
    recs = [("a", "2012-03-05", "apple banana"), ("b", "2019-12-31T23:00:00", "fig kiwi"),
            ("a", "2015-06-01", "grape lemon")]
    c = build_corpus(recs, min_words=1, time_steps=N, verbose=False)
    s = c.report["time_bins"]
    assert (c.time_width, s["bins_spanned"], s["chosen"]) == (width, spanned, f"auto:time_steps={N}")


def _records(n=400, seed=1):
    rng = np.random.default_rng(seed)
    a, b = (dt.date(2003, 7, 1) - EPOCH).days, (dt.date(2009, 2, 1) - EPOCH).days
    out = []
    for i in range(n):
        t = rng.uniform(a, b)
        ts = str(_date(t)) if i % 2 else float(t)  # ISO dates and day numbers mixed
        out.append((f"au{rng.integers(0, 12)}", ts, " ".join(rng.choice(WORDS, size=rng.integers(1, 9)))))
    return out


@pytest.mark.parametrize("mode", ["absolute", "relative"])
@pytest.mark.parametrize("kw", [{}, {"time_width": "month"}, {"time_width": "2 weeks"}, {"time_width": 7.0},
                                {"time_steps": 12}])
def test_both_builders_bin_alike(tmp_path, mode, kw):
    recs = _records()
    ref = build_corpus(recs, min_words=3, min_df=1, max_features=20, time_mode=mode, verbose=False, **kw)
    rep = build_shards(lambda: iter(recs), tmp_path / "s", min_words=3, min_df=1, max_features=20,
                       time_mode=mode, progress=False, **kw)
    got = Corpus.load(tmp_path / "s")
    assert got.n_docs == ref.n_docs
    np.testing.assert_array_equal(_doc_bins(got), _doc_bins(ref))
    assert got.time_width == ref.time_width and got.time_origin == ref.time_origin
    for k in ("unit", "multiple", "width", "chosen", "first_bin_start"):
        assert rep["time_bins"][k] == ref.report["time_bins"][k], k


def test_like_train_uses_the_training_bins(tmp_path):
    recs = _records(300)
    train = build_corpus(recs, min_words=1, verbose=False)  # auto: 5.6 years -> months
    assert train.time_width == "month"
    rng = np.random.default_rng(5)
    test_recs = [(a, str(_date(t)), "apple banana fig")
                 for a, t in zip(train.author_names, rng.uniform(train.time_origin, train.time_origin + 2000, 12))]
    train.save(tmp_path / "train")
    part, _ = train.split(0.2, seed=0)
    for like in (train, Corpus.load(tmp_path / "train"), part):
        assert like.time_width == "month" and like.time_origin == train.time_origin
        te = build_corpus(test_recs, min_words=1, like=like, verbose=False)
        assert te.time_width == "month" and te.time_origin == train.time_origin
        o = _period(_date(train.time_origin), "month")
        want = [_period(_date(float((dt.date.fromisoformat(r[1]) - EPOCH).days)), "month") - o for r in test_recs]
        got = dict(zip(te.timestamps.tolist(), _doc_bins(te).tolist()))
        seen = [w for w, r in zip(want, test_recs) if w in set(train.time_values.tolist())]
        assert sorted(got.values()) == sorted(seen) and te.n_docs == len(seen) > 0
    # the binning is read back from disk, not re-chosen
    assert Corpus.load(tmp_path / "train").time_bins() == train.time_bins()


def test_merge_rebins_calendar_units():
    recs = _records(200)
    a = build_corpus(recs[:100], min_words=1, time_width="month", verbose=False)
    b = build_corpus(recs[100:], min_words=1, time_width="month", verbose=False)
    m = merge([a, b])
    whole = build_corpus(recs, min_words=1, time_width="month", verbose=False)
    assert m.time_origin == whole.time_origin
    np.testing.assert_array_equal(_doc_bins(m), _doc_bins(whole))


def test_bad_time_width_and_steps_raise_clearly(tmp_path):
    recs = _records(20)
    for bad in ("fortnight", "0 months", -1.0, 0, float("nan"), "3 parsecs"):
        with pytest.raises(ValueError, match="time_width"):
            build_corpus(recs, time_width=bad, verbose=False)
        with pytest.raises(ValueError, match="time_width"):
            build_shards(lambda: iter(recs), tmp_path / "s", time_width=bad, progress=False)
    for bad in (0, -3, 2.5, "12"):
        with pytest.raises(ValueError, match="time_steps must be a positive integer"):
            build_corpus(recs, time_steps=bad, verbose=False)
        with pytest.raises(ValueError, match="time_steps must be a positive integer"):
            build_shards(lambda: iter(recs), tmp_path / "s", time_steps=bad, progress=False)
    with pytest.raises(ValueError, match="not both"):
        build_corpus(recs, time_width="month", time_steps=10, verbose=False)
    with pytest.raises(CorpusError, match="calendar unit"):
        c = build_corpus(recs, min_words=1, verbose=False)
        c._with(time_width="fortnight")
    assert parse_time_width(" 3 Months ").spec == "3 months"
    with pytest.raises(ValueError, match="not both"):
        choose(7.0, 5, "absolute", True, 0.0, 10.0)


def test_cli_prints_and_saves_the_binning(tmp_path, capsys):
    from fastprob.cli import main

    path = tmp_path / "r.jsonl"
    path.write_text("".join(json.dumps({"author": a, "timestamp": t, "text": x}) + "\n" for a, t, x in _records(60)))
    main(["corpus", "build", "--corpus", str(path), "--min-words", "1", "--out", str(tmp_path / "c")])
    out = capsys.readouterr().out
    c = Corpus.load(tmp_path / "c")
    assert c.time_width == "month" and "of calendar months, auto" in out
    assert f"first step starts {_date(c.time_origin)}" in out and str(_date(c.time_origin)).endswith("-01")
    main(["corpus", "info", str(tmp_path / "c")])
    assert f"of calendar months; first step starts {_date(c.time_origin)}" in capsys.readouterr().out
    main(["corpus", "build-shards", "--input", str(path), "--out", str(tmp_path / "s"), "--min-words", "1",
          "--min-df", "1", "--time-mode", "absolute", "--time-steps", "6"])
    out = capsys.readouterr().out
    # the 60 records fall in 2003 .. 2008: at most 6 steps are those six calendar years
    assert "time steps: 6 of calendar years, auto:time_steps=6; first step starts 2003-01-01" in out
    assert Corpus.load(tmp_path / "s").time_width == "year"
    with pytest.raises(SystemExit):
        main(["corpus", "build", "--corpus", str(path), "--time-width", "fortnight"])
    assert "calendar unit" in capsys.readouterr().err


def test_report_axis_labels_follow_calendar_bins():
    from fastprob.topics.report import days_to_years

    origin = float((dt.date(2003, 8, 1) - EPOCH).days)
    got = days_to_years([0, 5, 17], origin, "month")
    starts = [dt.date(2003, 8, 1), dt.date(2004, 1, 1), dt.date(2005, 1, 1)]
    np.testing.assert_allclose(got, [1970 + (d - EPOCH).days / 365.2425 for d in starts])
    np.testing.assert_allclose(days_to_years([0, 2], origin, 7.0), 1970 + (origin + np.array([0, 14])) / 365.2425)
