"""Real multi-author, multi-decade corpora that every Debian machine carries offline.

* Debian package changelogs (``/usr/share/doc/*/changelog.Debian.gz``): one record per
  upload - the maintainer's e-mail address, the upload date and the change text.
* GNU-style ``ChangeLog`` files (glibc, gcc, emacs, ... ship them; Debian's source
  packages such as ``glibc-source`` carry decades of them): one record per dated entry.

Both give ``(author, "YYYY-MM-DD", text)`` records for :func:`fastprob.corpus.build_corpus`.
"""
from __future__ import annotations

import glob
import gzip
import os
import re
from email.utils import parsedate_to_datetime

DEBIAN_GLOB = "/usr/share/doc/*/changelog.Debian.gz"

# " -- Jane Doe <jane@example.org>  Mon, 02 Jan 2006 15:04:05 +0000"
_DEB_SIGNOFF = re.compile(r"^ -- (?P<name>.*?)\s*<(?P<mail>[^<>\s]+)>\s+(?P<date>\S.*?)\s*$")
# "pkg (1.2-3) unstable; urgency=low"
_DEB_HEADER = re.compile(r"^[a-z0-9][a-z0-9+.\-]*\s+\([^()\s]+\)\s.*;")
# "2019-01-02  Jane Doe  <jane@example.org>" (also with a time, or the old "Tue Jan  2 ..." form)
_GNU_HEADER = re.compile(r"^(?P<date>\d{4}-\d{2}-\d{2})(?:[ T]\S+)?\s+(?P<name>[^<\t]*?)\s*<(?P<mail>[^<>\s]+)>")
_GNU_OLD_HEADER = re.compile(
    r"^(?:Mon|Tue|Wed|Thu|Fri|Sat|Sun) (?P<mon>[A-Z][a-z]{2})\s+(?P<day>\d{1,2}) [\d:]+ (?:[A-Z]{3,4} )?"
    r"(?P<year>\d{4})\s+(?P<name>[^<]*?)\s*<(?P<mail>[^<>\s]+)>")
_MONTHS = {m: i + 1 for i, m in enumerate("Jan Feb Mar Apr May Jun Jul Aug Sep Oct Nov Dec".split())}


def _clean(lines):
    return " ".join(ln.strip().lstrip("*+-").strip() for ln in lines if ln.strip())


def parse_debian_changelog(lines):
    """Yield ``(maintainer e-mail, date, text)`` for each entry of one Debian changelog.

    Entries without a parseable sign-off date are skipped (they cannot be placed in time).
    """
    body: list[str] = []
    for ln in lines:
        if _DEB_HEADER.match(ln):
            body = []
            continue
        m = _DEB_SIGNOFF.match(ln)
        if m is None:
            body.append(ln)
            continue
        try:
            date = parsedate_to_datetime(m.group("date")).strftime("%Y-%m-%d")
        except (TypeError, ValueError, IndexError):
            body = []
            continue
        text = _clean(body)
        if text:
            yield m.group("mail").lower(), date, text
        body = []


def parse_gnu_changelog(lines):
    """Yield ``(author e-mail, date, text)`` for each dated entry of a GNU ``ChangeLog``."""
    head = None
    body: list[str] = []
    for ln in lines:
        m = _GNU_HEADER.match(ln)
        date = None
        if m is not None:
            date = m.group("date")
        else:
            m = _GNU_OLD_HEADER.match(ln)
            if m is not None and m.group("mon") in _MONTHS:
                date = f"{m.group('year')}-{_MONTHS[m.group('mon')]:02d}-{int(m.group('day')):02d}"
        if date is not None:
            if head is not None and _clean(body):
                yield head[0], head[1], _clean(body)
            head, body = (m.group("mail").lower(), date), []
        elif head is not None:
            body.append(ln)
    if head is not None and _clean(body):
        yield head[0], head[1], _clean(body)


def _is_tarball(path: str) -> bool:
    import tarfile

    if re.search(r"\.(tar|tgz|tbz2|txz|tar\.(gz|bz2|xz|zst))$", path):
        return True
    try:
        return tarfile.is_tarfile(path)
    except OSError:
        return False


def _read_lines(path):
    opener = gzip.open if path.endswith(".gz") else open
    with opener(path, "rt", encoding="utf-8", errors="replace") as f:
        return f.read().splitlines()


def debian_changelog_records(pattern: str = DEBIAN_GLOB, max_files: int | None = None):
    """Records from the Debian changelogs matching ``pattern`` (sorted, first ``max_files``)."""
    paths = sorted(glob.glob(pattern))[:max_files]
    out = []
    for p in paths:
        try:
            out.extend(parse_debian_changelog(_read_lines(p)))
        except (OSError, EOFError):  # unreadable or truncated archive: skip that package
            continue
    return out


def _tar_changelog_records(path: str):
    """Records from the ``ChangeLog*`` members of a source tarball, read in place (nothing is
    extracted to disk, so member names cannot write outside anything)."""
    import tarfile

    out, n = [], 0
    try:
        with tarfile.open(path, "r:*") as tf:
            for mem in tf:
                if not (mem.isfile() and os.path.basename(mem.name).startswith("ChangeLog")):
                    continue
                f = tf.extractfile(mem)
                if f is None:
                    continue
                n += 1
                out.extend(parse_gnu_changelog(f.read().decode("utf-8", errors="replace").splitlines()))
    except (tarfile.TarError, EOFError, OSError) as exc:
        raise ValueError(f"{path!r} is not a readable tar archive ({exc}); pass the unpacked source "
                         "directory or a ChangeLog file instead") from exc
    if n == 0:
        raise FileNotFoundError(f"no ChangeLog files in the archive {path!r}")
    return out


def gnu_changelog_records(root: str):
    """Records from every file named ``ChangeLog*`` under ``root``, from ``root`` itself when
    it is a file, or from the ``ChangeLog*`` members of a source tarball (``.tar``,
    ``.tar.gz``, ``.tar.xz``, ... e.g. ``/usr/src/glibc/glibc-2.36.tar.xz`` from Debian's
    ``glibc-source``)."""
    if os.path.isfile(root) and _is_tarball(root):
        return _tar_changelog_records(root)
    if os.path.isfile(root):
        paths = [root]
    else:
        paths = sorted(os.path.join(d, f) for d, _, fs in os.walk(root) for f in fs if f.startswith("ChangeLog"))
    if not paths:
        raise FileNotFoundError(f"no ChangeLog files under {root!r}")
    out = []
    for p in paths:
        try:
            out.extend(parse_gnu_changelog(_read_lines(p)))
        except (OSError, EOFError, UnicodeError):
            continue
    return out


def load_debian_changelogs(pattern: str = DEBIAN_GLOB, max_files: int | None = None, *,
                           min_words: int = 5, time_width="year", **build_kw):
    """The Debian changelogs of this machine as a corpus: maintainers as authors, calendar
    years as steps (``time_width`` and any other keyword go to ``build_corpus``).

    Raises FileNotFoundError on a machine without Debian changelogs.
    """
    from ..corpus import build_corpus

    recs = debian_changelog_records(pattern, max_files)
    if not recs:
        raise FileNotFoundError(f"no Debian changelog entries found at {pattern!r} (not a Debian "
                                "machine?); pass pattern= to point at changelog.Debian.gz files")
    build_kw.setdefault("verbose", False)
    return build_corpus(recs, min_words=min_words, time_mode="absolute", time_width=time_width, **build_kw)


def load_gnu_changelogs(path: str = "/usr/src/glibc", *, min_words: int = 5, time_width="year", **build_kw):
    """The GNU ``ChangeLog`` entries under ``path`` (a source tree, one file, or a source
    tarball; a directory holding tarballs, such as Debian's ``/usr/src/glibc`` from
    ``glibc-source``, uses its newest tarball) as a corpus: e-mail addresses as authors,
    calendar years as steps (``time_width`` and other keywords go to ``build_corpus``).

    Raises FileNotFoundError when nothing is found (install ``glibc-source`` or pass path=).
    """
    from ..corpus import build_corpus

    if os.path.isdir(path):
        tars = sorted(f for f in os.listdir(path) if _is_tarball(os.path.join(path, f)))
        if tars and not any(f.startswith("ChangeLog") for f in os.listdir(path)):
            path = os.path.join(path, tars[-1])
    elif not os.path.exists(path):
        raise FileNotFoundError(f"{path!r} does not exist (apt-get install glibc-source, or pass path= to a "
                                "source tree or tarball with ChangeLog files)")
    recs = gnu_changelog_records(path)
    build_kw.setdefault("verbose", False)
    return build_corpus(recs, min_words=min_words, time_mode="absolute", time_width=time_width, **build_kw)
