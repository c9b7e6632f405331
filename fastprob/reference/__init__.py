"""Pure NumPy / PyTorch references: one file per fast op, same signatures.

These are the test oracles of the compiled kernels and the fallback when a compiled
backend is unavailable (see ``fastprob.show_backends()``).
"""
