"""Models built from the flow blocks: gradient boosted normalizing flows (GBNF)."""
from .._optional import require

require("torch", "flows", "fastprob.models")  # a clear message when the extra is missing
from .boosted_vae import BoostedVAE  # noqa: E402
from .density_matching import fit_boosted_reverse_kl, fit_flow_reverse_kl  # noqa: E402
from .gbnf import BoostedFlow  # noqa: E402
from .psr import ConditionalPSR, JointPSR  # noqa: E402
from .vae_training import fit_boosted_vae, update_rho  # noqa: E402

__all__ = ["BoostedFlow", "BoostedVAE", "ConditionalPSR", "JointPSR", "fit_boosted_reverse_kl", "fit_boosted_vae",
           "fit_flow_reverse_kl", "update_rho"]
