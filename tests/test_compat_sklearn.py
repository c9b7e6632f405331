"""scikit-learn's own sklearn/feature_extraction/tests/test_text.py (shipped in its wheel, run
unmodified from the installed package) with CountVectorizer and TfidfVectorizer replaced by
fastprob.text's, with fast-path counters."""
import os

import pytest
import sklearn

from compat_peer import run_peer_tests

pytestmark = pytest.mark.slow  # runs scikit-learn's 131 text tests in a subprocess

TEST_FILE = os.path.join(os.path.dirname(sklearn.__file__), "feature_extraction", "tests", "test_text.py")
EXPECTED_FAILURES: dict = {}


@pytest.mark.skipif(not os.path.exists(TEST_FILE), reason="this scikit-learn install ships no tests")
def test_sklearn_own_text_tests_pass_on_the_dropins(tmp_path):
    outcomes, counts, out = run_peer_tests(tmp_path, [TEST_FILE, "-W", "ignore"], ["sklearn"], tmp_path)
    assert len(outcomes) > 100, out
    failed = {k for k, v in outcomes.items() if v == "failed"}
    assert failed == set(EXPECTED_FAILURES), out
    cv = counts["sklearn.CountVectorizer"]
    # most of the suite's CountVectorizer calls are the default word analyzer: the compiled path
    assert cv["fast"] > 5 * cv["fallback"], counts
    tf = counts["sklearn.TfidfVectorizer"]
    assert tf["fast"] > 0, counts
    # fallbacks only for what the counter does not reproduce
    allowed = ("analyzer", "callable analyzer", "custom preprocessor", "custom tokenizer", "ngram_range",
               "strip_accents", "token_pattern", "empty vocabulary")
    for r in list(cv["reasons"]) + list(tf["reasons"]):
        assert r.startswith(allowed), r
