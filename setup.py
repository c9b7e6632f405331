"""Build only the Cython extensions; all metadata lives in pyproject.toml.

The extensions are optional: ``FASTPROB_PUREPYTHON=1`` at build time skips them, and a
compiler failure does not fail the install (``optional=True``).  Either way fastprob falls
back to the NumPy references and ``fastprob.show_backends()`` says so.  CI builds with
``FASTPROB_REQUIRE_COMPILED=1``, under which a compiler failure fails the install.
(Build-time switches are read here because fastprob itself is not importable yet; at run
time every ``FASTPROB_*`` variable is read in ``fastprob/_config.py``.)
"""
import os

from setuptools import Extension, setup

ext_modules = []
_required = os.environ.get("FASTPROB_REQUIRE_COMPILED", "0") in ("1", "true", "True", "yes")
if os.environ.get("FASTPROB_PUREPYTHON", "0") not in ("1", "true", "True", "yes"):
    import numpy as np
    from Cython.Build import cythonize

    exts = [
        Extension(
            f"fastprob._csrc.{name}",
            [f"csrc/{name}.pyx"],
            include_dirs=[np.get_include()],
            define_macros=[("NPY_NO_DEPRECATED_API", "NPY_1_7_API_VERSION")],
            extra_compile_args=["-O3"],
            optional=not _required,
        )
        for name in ("sparse_counts", "tokenize", "word_counts")
    ]
    ext_modules = cythonize(exts, language_level=3, compiler_directives={
        "boundscheck": False, "wraparound": False, "cdivision": True, "initializedcheck": False})

setup(ext_modules=ext_modules)
