"""Build only the Cython extensions; all metadata lives in pyproject.toml.

The extensions are optional: ``FASTPROB_PUREPYTHON=1`` at build time skips them, and a
compiler failure does not fail the install (``optional=True``).  Either way fastprob falls
back to the NumPy references and ``fastprob.show_backends()`` says so.
"""
import os

from setuptools import Extension, setup

ext_modules = []
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
            optional=True,
        )
        for name in ("sparse_counts", "tokenize", "word_counts")
    ]
    ext_modules = cythonize(exts, language_level=3, compiler_directives={
        "boundscheck": False, "wraparound": False, "cdivision": True, "initializedcheck": False})

setup(ext_modules=ext_modules)
