"""fastprob: compiled-kernel probabilistic models.

* :mod:`fastprob.corpus`  - documents by many authors over time as sparse counts
* :mod:`fastprob.topics`  - the DAPPER dynamic author-persona topic model
* :mod:`fastprob.flows`   - normalizing-flow building blocks with fused kernels
* :mod:`fastprob.datasets` - built-in data (State of the Union; sampled DAP corpora)

``fastprob.show_backends()`` prints which backend each op uses and why.
"""
from ._dispatch import BackendUnavailable, show_backends
from .corpus import Corpus

__version__ = "0.1.0"
__all__ = ["BackendUnavailable", "Corpus", "show_backends", "__version__"]
