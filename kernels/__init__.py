"""JIT kernel bodies, installed as ``fastprob.kernels``.

This folder sits at the top of the repository (beside ``csrc/``) and pyproject.toml maps it
to ``fastprob.kernels``.  From a plain checkout, ``import kernels`` would load a second,
independent copy (its own Numba caches, not the one ``fastprob`` dispatches to), so that
name is refused: install the checkout (``pip install -e .``) and import
``fastprob.kernels``.
"""
if __name__ != "fastprob.kernels":
    raise ImportError(
        f"this folder is fastprob's kernel package and was imported as {__name__!r}: import it as "
        "fastprob.kernels (run 'pip install -e .' in the checkout, which maps kernels/ there)")
