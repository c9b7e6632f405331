"""GNU ChangeLogs read straight from a source tarball (Debian's glibc-source ships one):
the records must equal those parsed from the unpacked files, and bad archives are refused."""
import io
import os
import subprocess
import sys
import tarfile

import pytest

from fastprob.datasets import gnu_changelog_records, parse_gnu_changelog

LOG_A = """2003-05-04  Ada Lovelace  <ada@example.org>

\t* engine.c (compute): Handle the empty input.
\t* engine.h: Declare it.

Tue Jan  2 10:00:00 1996  Charles Babbage  <cb@example.org>

\t* mill.c: New file with the mill.
"""
LOG_B = """2010-11-12  Grace Hopper  <grace@example.org>

\t* compiler/cobol.c (emit): Emit the record layout.
"""


def _write_tree(root):
    os.makedirs(os.path.join(root, "pkg", "sub"))
    with open(os.path.join(root, "pkg", "ChangeLog"), "w") as f:
        f.write(LOG_A)
    with open(os.path.join(root, "pkg", "sub", "ChangeLog.old"), "w") as f:
        f.write(LOG_B)
    with open(os.path.join(root, "pkg", "README"), "w") as f:
        f.write("2001-01-01  Not A Log  <x@example.org>\n\n\t* not a changelog\n")


@pytest.mark.parametrize("mode,suffix", [("w:xz", ".tar.xz"), ("w:gz", ".tar.gz"), ("w", ".tar")])
def test_tarball_records_equal_the_unpacked_files(tmp_path, mode, suffix):
    _write_tree(tmp_path / "src")
    arc = tmp_path / f"pkg{suffix}"
    with tarfile.open(arc, mode) as tf:
        tf.add(tmp_path / "src" / "pkg", arcname="pkg")
    # oracle: each file parsed on its own; the README must not be read
    expected = list(parse_gnu_changelog(LOG_A.splitlines())) + list(parse_gnu_changelog(LOG_B.splitlines()))
    got = gnu_changelog_records(str(arc))
    assert sorted(got) == sorted(expected)
    assert len(got) == 3 and {a for a, _, _ in got} == {"ada@example.org", "cb@example.org", "grace@example.org"}
    assert sorted(gnu_changelog_records(str(tmp_path / "src"))) == sorted(expected)


def test_corrupt_or_empty_tarballs_are_refused(tmp_path):
    bad = tmp_path / "broken.tar.xz"
    good = io.BytesIO()
    with tarfile.open(fileobj=good, mode="w:xz") as tf:
        data = LOG_A.encode()
        info = tarfile.TarInfo("pkg/ChangeLog")
        info.size = len(data)
        tf.addfile(info, io.BytesIO(data))
    bad.write_bytes(good.getvalue()[: len(good.getvalue()) // 2])  # truncated
    with pytest.raises(ValueError, match="not a readable tar archive"):
        gnu_changelog_records(str(bad))
    empty = tmp_path / "nolog.tar.gz"
    with tarfile.open(empty, "w:gz") as tf:
        info = tarfile.TarInfo("pkg/README")
        info.size = 3
        tf.addfile(info, io.BytesIO(b"abc"))
    with pytest.raises(FileNotFoundError, match="no ChangeLog files"):
        gnu_changelog_records(str(empty))
    r = subprocess.run([sys.executable, "-m", "fastprob.cli", "corpus", "build", "--changelog", str(bad),
                        "--out", str(tmp_path / "c")], capture_output=True, text=True)
    assert r.returncode != 0 and "not a readable tar archive" in r.stderr
    assert not (tmp_path / "c").exists()


GLIBC = "/usr/src/glibc"


@pytest.mark.skipif(not os.path.isdir(GLIBC), reason="Debian's glibc-source is not installed (apt-get install "
                    "glibc-source); the synthetic tarball tests above cover the reader")
def test_glibc_source_changelogs():
    arcs = sorted(p for p in os.listdir(GLIBC) if p.startswith("glibc-") and ".tar" in p)
    assert arcs, "glibc-source installed but no tarball found"
    recs = gnu_changelog_records(os.path.join(GLIBC, arcs[-1]))
    authors = {a for a, _, _ in recs}
    years = sorted({d[:4] for _, d, _ in recs})
    # glibc's ChangeLog.old/ holds decades of entries by hundreds of people
    assert len(recs) > 10_000 and len(authors) > 300 and int(years[-1]) - int(years[0]) >= 20
    assert all(len(d) == 10 and d[4] == "-" and d[7] == "-" for _, d, _ in recs)
