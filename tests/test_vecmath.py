"""The vectorizable exp/log used by the Numba E-step, against NumPy over their domain."""
import numpy as np

from conftest import import_compiled  # noqa: E402

vecmath = import_compiled("fastprob.kernels.numba.vecmath", "Numba kernels unavailable")
from numba import njit  # noqa: E402


@njit(fastmath={"reassoc", "contract"}, error_model="numpy")
def _apply_exp(x, out):
    for i in range(x.shape[0]):  # a loop, so the vectorized code path is the one tested
        out[i] = vecmath.vexp(x[i])


@njit(fastmath={"reassoc", "contract"}, error_model="numpy")
def _apply_log(x, out):
    for i in range(x.shape[0]):
        out[i] = vecmath.vlog(x[i])


def test_exp_matches_numpy_on_its_domain():
    rng = np.random.default_rng(0)
    x = np.concatenate([rng.uniform(-708, 708, 200_000), rng.uniform(-1, 1, 50_000),
                        [0.0, -0.0, 1e-300, -1e-17, 0.5 * np.log(2), -0.5 * np.log(2), -708.0, 708.0]])
    out = np.empty_like(x)
    _apply_exp(x, out)
    np.testing.assert_allclose(out, np.exp(x), rtol=5e-16, atol=0)
    assert out[-8] == 1.0


def test_exp_clamps_outside_its_domain():
    x = np.array([-1e4, -710.0, 710.0, 1e4])
    out = np.empty_like(x)
    _apply_exp(x, out)
    np.testing.assert_allclose(out, np.exp([-708.0, -708.0, 708.0, 708.0]), rtol=5e-16)
    assert np.all(np.isfinite(out)) and np.all(out > 0)


def test_log_matches_numpy_on_positive_normals():
    rng = np.random.default_rng(1)
    x = np.concatenate([np.exp(rng.uniform(-700, 700, 200_000)), rng.uniform(0.5, 2.0, 50_000),
                        [1.0, 2.0, 0.5, np.sqrt(2.0), np.nextafter(np.sqrt(2.0), 2), 2.2250738585072014e-308,
                         1.7976931348623157e308]])
    out = np.empty_like(x)
    _apply_log(x, out)
    ref = np.log(x)
    # absolute error near 1, relative error for large |log x|
    assert np.all(np.abs(out - ref) <= 3e-16 * np.maximum(1.0, np.abs(ref)))
    assert out[-7] == 0.0
