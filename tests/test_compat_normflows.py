"""normflows' own, unmodified glow_test.py and core_test.py (multiscale Glow with Squeeze), from
its sdist fetched by pip at test time, against fastprob.compat.normflows, with counters."""
import pytest

pytest.importorskip("normflows", reason="normflows is not installed (pip install 'fastprob[compat]')")

pytestmark = pytest.mark.slow  # downloads the peer and runs its tests in a subprocess

from compat_peer import fetch_peer_files, run_peer_tests  # noqa: E402

FILES = ["normflows/flows/affine/glow_test.py", "normflows/core_test.py", "normflows/flows/flow_test.py"]
# GlowBlock and the multiscale model are the users of the replaced layers; the rest of
# core_test.py exercises autoregressive / VAE models fastprob does not touch.
SELECT = ["normflows/flows/affine/glow_test.py", "normflows/core_test.py::CoreTest::test_multiscale_flow"]
EXPECTED_FAILURES: dict = {}


def test_normflows_own_tests_pass_on_the_dropins(request, tmp_path):
    root = fetch_peer_files(request, "normflows", FILES, sdist=True)
    outcomes, counts, out = run_peer_tests(root, SELECT, ["normflows"], tmp_path)
    assert len(outcomes) == 2, out
    failed = {k for k, v in outcomes.items() if v == "failed"}
    assert failed == set(EXPECTED_FAILURES), out
    blk = counts["normflows.AffineCouplingBlock"]
    # glow_test: 5 of its 7 configurations use a channel split; the multiscale model only those
    assert blk["fast"] > 2 * blk["fallback"], counts
    assert set(blk["reasons"]) <= {"split mode 'checkerboard' (fused: channel, channel_inv)",
                                   "scale=False (additive coupling)"}, counts
    sq = counts["normflows.Squeeze"]
    assert sq["fast"] > 0 and sq["fallback"] == 0, counts
