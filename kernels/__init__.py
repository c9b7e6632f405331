"""JIT kernel bodies (installed as fastprob.kernels)."""
