"""Drop-in fast layers for other libraries' models.

Each submodule subclasses a peer library's layer and runs fastprob's fused kernels when the
configuration is one they reproduce exactly, and the peer's own code otherwise:

* :mod:`fastprob.compat.nflows` - ``AffineCouplingTransform``, ``AdditiveCouplingTransform``,
  ``SqueezeTransform``;
* :mod:`fastprob.compat.normflows` - ``AffineCoupling``, ``AffineCouplingBlock``, ``Squeeze``;
* :mod:`fastprob.compat.zuko` - ``GeneralCouplingTransform`` (NICE / RealNVP);
* :mod:`fastprob.compat.freia` - ``GLOWCouplingBlock``, ``RNVPCouplingBlock``,
  ``AffineCouplingOneSided``;
* :class:`fastprob.text.CountVectorizer` - scikit-learn's ``CountVectorizer``.

Each module's ``install()`` swaps the drop-ins into the peer's namespace so unchanged user
code builds them; :func:`counters` tells how many calls took the fast path.  The peers are
optional: ``pip install 'fastprob[compat]'``.
"""
from ._counters import counters, reset_counters

ADAPTERS = ("nflows", "normflows", "zuko", "freia", "sklearn")

__all__ = ["ADAPTERS", "counters", "reset_counters"]
