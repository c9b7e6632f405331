"""Models built from the flow blocks: gradient boosted normalizing flows (GBNF)."""
from .density_matching import fit_boosted_reverse_kl, fit_flow_reverse_kl
from .gbnf import BoostedFlow
from .psr import ConditionalPSR, JointPSR

__all__ = ["BoostedFlow", "ConditionalPSR", "JointPSR", "fit_boosted_reverse_kl", "fit_flow_reverse_kl"]
