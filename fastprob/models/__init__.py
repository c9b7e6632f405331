"""Models built from the flow blocks: gradient boosted normalizing flows (GBNF)."""
from .boosted_vae import BoostedVAE
from .density_matching import fit_boosted_reverse_kl, fit_flow_reverse_kl
from .gbnf import BoostedFlow
from .vae_training import fit_boosted_vae, update_rho

__all__ = ["BoostedFlow", "BoostedVAE", "fit_boosted_reverse_kl", "fit_boosted_vae", "fit_flow_reverse_kl",
           "update_rho"]
