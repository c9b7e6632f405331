"""Packaging and configuration: FASTPROB_REQUIRE_COMPILED, optional-dependency messages,
the sdist's contents and the kernels/ layout guard."""
import os
import subprocess
import sys
import tarfile

import pytest

from fastprob import _config, _dispatch
from fastprob._optional import require

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


@pytest.fixture
def broken_op():
    """An op whose Cython backend cannot load (as after a failed build)."""
    _dispatch.register("_test_broken", "cython", "fastprob._csrc.no_such_module:f", "cython")
    _dispatch.register("_test_broken", "numpy", "fastprob.reference.sparse_counts:count_tokens")
    yield "_test_broken"
    del _dispatch._REGISTRY["_test_broken"]


def test_require_compiled_turns_fallback_into_error(broken_op, monkeypatch):
    monkeypatch.delenv("FASTPROB_REQUIRE_COMPILED", raising=False)
    _config.reload()
    try:
        assert _dispatch.resolve(broken_op).__module__ == "fastprob.reference.sparse_counts"
        monkeypatch.setenv("FASTPROB_REQUIRE_COMPILED", "1")
        _config.reload()
        with pytest.raises(_dispatch.BackendUnavailable, match="REQUIRE_COMPILED.*no_such_module"):
            _dispatch.resolve(broken_op)
        # a backend disabled on purpose is still a choice, not a failure
        monkeypatch.setenv("FASTPROB_DISABLE_CYTHON", "1")
        _config.reload()
        assert _dispatch.resolve(broken_op).__module__ == "fastprob.reference.sparse_counts"
    finally:
        monkeypatch.undo()
        _config.reload()


def test_missing_optional_dependency_names_the_extra():
    with pytest.raises(ImportError, match=r"pip install 'fastprob\[plots\]'"):
        require("no_such_package_xyz", "plots", "the persona plot")


def test_kernels_package_is_fastprob_kernels():
    """The checkout's top-level kernels/ is installed as fastprob.kernels; importing it as a
    top-level package (an ambiguity in a plain checkout) is refused."""
    import fastprob.kernels

    assert os.path.samefile(os.path.dirname(fastprob.kernels.__file__), os.path.join(ROOT, "kernels")) \
        or "site-packages" in fastprob.kernels.__file__
    out = subprocess.run([sys.executable, "-c", "import kernels"], cwd=ROOT, capture_output=True, text=True)
    assert out.returncode != 0 and "import it as fastprob.kernels" in out.stderr


@pytest.mark.slow
def test_sdist_ships_what_a_build_needs(tmp_path):
    """The source distribution holds the Cython sources and the test support files."""
    pytest.importorskip("build", reason="python -m build is used by CI's sdist step")
    out = subprocess.run([sys.executable, "-m", "build", "--sdist", "--no-isolation", "--skip-dependency-check", "--outdir", str(tmp_path)],
                         cwd=ROOT, capture_output=True, text=True)
    assert out.returncode == 0, out.stderr[-2000:]
    (sdist,) = [p for p in os.listdir(tmp_path) if p.endswith(".tar.gz")]
    with tarfile.open(tmp_path / sdist) as t:
        names = {n.split("/", 1)[1] for n in t.getnames() if "/" in n}
    for need in ("csrc/sparse_counts.pyx", "csrc/tokenize.pyx", "tests/conftest.py", "setup.py",
                 "kernels/numba/estep.py", "fastprob/corpus/stopwords_en.txt", "README.md"):
        assert need in names, need
