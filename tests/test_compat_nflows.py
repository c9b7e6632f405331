"""nflows' own, unmodified tests/transforms/coupling_test.py and reshape_test.py (from its sdist,
fetched by pip at test time) against fastprob.compat.nflows, with fast-path counters."""
import pytest

pytest.importorskip("nflows", reason="nflows is not installed (pip install 'fastprob[compat]')")
pytest.importorskip("torchtestcase", reason="torchtestcase is not installed (pip install 'fastprob[compat]')")

pytestmark = pytest.mark.slow  # downloads the peer and runs its tests in a subprocess

from compat_peer import fetch_peer_files, run_peer_tests  # noqa: E402

FILES = ["tests/transforms/__init__.py", "tests/transforms/transform_test.py",
         "tests/transforms/coupling_test.py", "tests/transforms/reshape_test.py"]
# Tests of nflows' piecewise (spline) couplings are deselected: fastprob does not replace
# those classes, so they would only re-test nflows (and take most of the time).
SELECT = ["tests/transforms/coupling_test.py", "tests/transforms/reshape_test.py", "-k", "not Piecewise"]
EXPECTED_FAILURES: dict = {}  # every selected peer test passes (README lists none)


def test_nflows_own_tests_pass_on_the_dropins(request, tmp_path):
    root = fetch_peer_files(request, "nflows", FILES, sdist=True)
    outcomes, counts, out = run_peer_tests(root, SELECT, ["nflows"], tmp_path)
    assert len(outcomes) >= 11, out  # 6 coupling + 5 squeeze tests
    failed = {k for k, v in outcomes.items() if v == "failed"}
    assert failed == set(EXPECTED_FAILURES), out
    # the fused path ran for every coupling call (the peer's nets and mid-split masks)
    for name in ("nflows.AffineCouplingTransform", "nflows.AdditiveCouplingTransform"):
        assert counts[name]["fast"] >= 8 and counts[name]["fallback"] == 0, counts
    sq = counts["nflows.SqueezeTransform"]
    assert sq["fast"] >= 6, counts
    # the squeeze fallbacks are exactly the peer's wrong-shape and integer-valued tests
    assert set(sq["reasons"]) == {"input shape nflows rejects (its own error is raised)", "integer inputs"}, counts
