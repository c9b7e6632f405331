"""fastprob's binary corpus format: a directory of memory-mappable shards.

Layout of ``PATH/``::

    manifest.json        format version, vocabulary, authors, time steps, the shard list
                         with each shard's size and CRC-32; written last
    shard-00000.fpc      one shard: a 64-byte header, then six arrays, each 64-byte aligned

Shard header (little-endian): magic ``b"FPSHARD1"``, u32 version, u32 reserved,
u64 n_docs, u64 nnz, u32 CRC-32 of everything after the header, u32 CRC-32 of the
header's first 36 bytes, zero padding to 64 bytes (checked to be zero on read).  Arrays in order: indptr int64
(n_docs + 1, starting at 0), indices int32 (nnz), counts int32 (nnz), authors int32,
times int32, timestamps float64 (n_docs each).

The manifest carries a SHA-256 of its own canonical JSON (every key but ``checksum``),
so a changed vocabulary word, ``n_docs`` or shard CRC is caught; its shard ``file``
entries must be names this writer produces (``shard-NNNNN.fpc``), never a path.

Every write goes to a temporary directory that is put in place only when complete (see
:mod:`fastprob.corpus.outdir`: only an empty directory or an existing fastprob corpus is
ever replaced), so an interrupted save never leaves a half-written corpus; a truncated or
corrupted shard fails its size or CRC check on load instead of being half-read.
"""
from __future__ import annotations

import hashlib
import json
import os
import shutil
import struct
import warnings
import zlib

import numpy as np

from .._io import atomic_write
from .corpus import Corpus, CorpusError
from .outdir import MANIFEST, SHARD_NAME, check_target, install, leftover_old, make_temp_dir

MAGIC = b"FPSHARD1"
FORMAT_VERSION = 1  # of the shard files
MANIFEST_VERSION = 2  # 2 added the manifest checksum; version 1 manifests load with a warning
_HEADER = struct.Struct("<8sIIQQII")  # 40 bytes, padded to 64
HEADER_SIZE = 64
_ALIGN = 64
_FIELDS = (("indptr", np.int64, 1), ("indices", np.int32, 0), ("counts", np.int32, 0),
           ("authors", np.int32, 2), ("times", np.int32, 2), ("timestamps", np.float64, 2))


class ShardError(CorpusError):
    """A shard or manifest is missing, truncated, corrupted or of another version."""


def _layout(n_docs: int, nnz: int):
    """Byte offset and length of each array in a shard."""
    sizes = {0: nnz, 1: n_docs + 1, 2: n_docs}
    off, out = HEADER_SIZE, []
    for name, dt, kind in _FIELDS:
        n = sizes[kind]
        out.append((name, dt, off, n))
        off += -(-(n * np.dtype(dt).itemsize) // _ALIGN) * _ALIGN
    return out, off


def _crc_file(f, start: int, end: int, chunk: int = 1 << 24) -> int:
    f.seek(start)
    crc, left = 0, end - start
    while left > 0:
        buf = f.read(min(chunk, left))
        if not buf:
            break
        crc = zlib.crc32(buf, crc)
        left -= len(buf)
    return crc & 0xFFFFFFFF


def write_shard(path, indptr, indices, counts, authors, times, timestamps) -> dict:
    """Write one shard atomically; returns its manifest entry."""
    indptr = np.asarray(indptr, dtype=np.int64)
    indptr = indptr - indptr[0]
    n_docs, nnz = indptr.shape[0] - 1, int(indptr[-1])
    arrays = dict(indptr=indptr, indices=indices, counts=counts, authors=authors, times=times,
                  timestamps=timestamps)
    layout, total = _layout(n_docs, nnz)
    with atomic_write(path, "wb") as f:
        f.write(b"\0" * HEADER_SIZE)
        crc = 0
        pos = HEADER_SIZE
        for name, dt, off, n in layout:
            if pos < off:
                pad = b"\0" * (off - pos)
                f.write(pad)
                crc = zlib.crc32(pad, crc)
                pos = off
            a = np.ascontiguousarray(arrays[name], dtype=dt)
            if a.shape != (n,):
                raise ShardError(f"shard array {name} has shape {a.shape}, expected ({n},)")
            b = a.tobytes()
            f.write(b)
            crc = zlib.crc32(b, crc)
            pos += len(b)
        if pos < total:
            pad = b"\0" * (total - pos)
            f.write(pad)
            crc = zlib.crc32(pad, crc)
        head = _HEADER.pack(MAGIC, FORMAT_VERSION, 0, n_docs, nnz, crc & 0xFFFFFFFF, 0)
        hcrc = zlib.crc32(head[:36]) & 0xFFFFFFFF
        head = _HEADER.pack(MAGIC, FORMAT_VERSION, 0, n_docs, nnz, crc & 0xFFFFFFFF, hcrc)
        f.seek(0)  # the header (with the payload's CRC) goes in last
        f.write(head.ljust(HEADER_SIZE, b"\0"))
        f.seek(0, 2)
    return {"file": os.path.basename(path), "n_docs": n_docs, "nnz": nnz, "bytes": total,
            "crc32": crc & 0xFFFFFFFF}


def read_shard(path, mmap: bool = True, verify: bool = True, expect: dict | None = None) -> dict:
    """Read one shard's arrays (memory-mapped by default) after checking size and CRC."""
    try:
        f = open(path, "rb")
    except FileNotFoundError:
        raise ShardError(f"shard {path} is missing") from None
    with f:
        head = f.read(HEADER_SIZE)
        if len(head) < HEADER_SIZE:
            raise ShardError(f"shard {path} is truncated (no complete header)")
        magic, version, _, n_docs, nnz, crc, hcrc = _HEADER.unpack(head[:_HEADER.size])
        if magic != MAGIC:
            raise ShardError(f"{path} is not a fastprob shard (bad magic {magic!r})")
        if zlib.crc32(head[:36]) & 0xFFFFFFFF != hcrc or any(head[_HEADER.size:]):
            raise ShardError(f"shard {path} has a corrupted header (checksum mismatch or non-zero "
                             "padding); restore it from a backup or rebuild the corpus")
        if version != FORMAT_VERSION:
            raise ShardError(f"shard {path} has format version {version}; this fastprob reads "
                             f"version {FORMAT_VERSION}: rebuild the corpus or upgrade fastprob")
        layout, total = _layout(n_docs, nnz)
        size = os.fstat(f.fileno()).st_size
        if size != total:
            raise ShardError(f"shard {path} is truncated or padded: {size} bytes, expected {total}")
        if expect is not None and (expect.get("crc32") != crc or expect.get("n_docs") != n_docs):
            raise ShardError(f"shard {path} does not match the manifest (replaced or stale file)")
        if verify and _crc_file(f, HEADER_SIZE, total) != crc:
            raise ShardError(f"shard {path} is corrupted (payload checksum mismatch); "
                             "restore it from a backup or rebuild the corpus")
        out = {}
        for name, dt, off, n in layout:
            if mmap and n > 0:
                out[name] = np.memmap(path, dtype=dt, mode="r", offset=off, shape=(n,))
            else:
                f.seek(off)
                out[name] = np.frombuffer(f.read(n * np.dtype(dt).itemsize), dtype=dt).copy()
    return out


def _manifest(c: Corpus, shards: list) -> dict:
    report = {k: v for k, v in c.report.items()}
    return {"format": "fastprob-corpus", "version": MANIFEST_VERSION, "vocab": list(c.vocab),
            "author_names": list(c.author_names), "time_values": c.time_values.tolist(),
            "time_mode": c.time_mode, "time_width": c.time_width, "time_origin": c.time_origin,
            "author_origin": None if c.author_origin is None else c.author_origin.tolist(),
            "report": report, "n_docs": c.n_docs, "shards": shards}


def manifest_checksum(man: dict) -> str:
    """SHA-256 of the manifest's canonical JSON (all keys but ``checksum``, sorted)."""
    body = {k: v for k, v in man.items() if k != "checksum"}
    text = json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=True, default=str)
    return "sha256:" + hashlib.sha256(text.encode("ascii")).hexdigest()


def write_manifest(directory: str, man: dict) -> None:
    """Write ``man`` with its checksum as ``directory/manifest.json`` (last file of a save)."""
    man = dict(man, checksum=manifest_checksum(man))
    with open(os.path.join(directory, MANIFEST), "w", encoding="utf-8") as f:
        json.dump(man, f, default=str)
        f.flush()
        os.fsync(f.fileno())


def save_corpus(c: Corpus, path, shard_docs: int | None = None) -> None:
    """Save ``c`` to directory ``path``.

    ``path`` must be absent, empty or an existing fastprob corpus (replaced atomically);
    anything else raises :class:`~fastprob.corpus.outdir.OutputExistsError`.
    """
    if shard_docs is not None and shard_docs < 1:
        raise ValueError(f"shard_docs must be >= 1, got {shard_docs}")
    path = os.path.abspath(os.fspath(path))
    check_target(path)
    tmpdir = make_temp_dir(path)
    try:
        shard_docs = shard_docs or max(c.n_docs, 1)
        shards = []
        for i, s in enumerate(range(0, max(c.n_docs, 1), shard_docs)):
            e = min(s + shard_docs, c.n_docs)
            a, b = c.indptr[s], c.indptr[e]
            shards.append(write_shard(
                os.path.join(tmpdir, f"shard-{i:05d}.fpc"), c.indptr[s:e + 1], c.indices[a:b],
                c.counts[a:b], c.authors[s:e], c.times[s:e], c.timestamps[s:e]))
        write_manifest(tmpdir, _manifest(c, shards))
        install(tmpdir, path)
    except BaseException:
        shutil.rmtree(tmpdir, ignore_errors=True)
        raise


def _check_manifest(man, mpath: str) -> None:
    """Version, checksum and shard entries of a parsed manifest (raises ShardError)."""
    if not isinstance(man, dict) or man.get("format") != "fastprob-corpus":
        raise ShardError(f"{mpath} is not a fastprob corpus manifest")
    version = man.get("version")
    if version not in (1, MANIFEST_VERSION):
        raise ShardError(f"corpus format version {version!r} is not supported "
                         f"(this fastprob reads {MANIFEST_VERSION} and 1)")
    if version == 1:
        warnings.warn(f"{mpath} was written by an older fastprob and has no checksum; re-save the "
                      "corpus to protect its manifest", UserWarning, stacklevel=3)
    elif man.get("checksum") != manifest_checksum(man):
        raise ShardError(f"{mpath} is corrupted or was edited (manifest checksum mismatch); "
                         "restore it from a backup or rebuild the corpus")
    shards = man.get("shards")
    if not isinstance(shards, list):
        raise ShardError(f"{mpath}: 'shards' must be a list")
    total = 0
    for k, e in enumerate(shards):
        name = e.get("file") if isinstance(e, dict) else None
        # only bare names of the writer's pattern: no absolute path, no '..', no sub-folder
        if not isinstance(name, str) or not SHARD_NAME.fullmatch(name):
            raise ShardError(f"{mpath}: shard entry {k} names {name!r}, not a shard file of this "
                             "corpus (expected shard-NNNNN.fpc inside the corpus directory)")
        if not all(isinstance(e.get(f), int) and e.get(f) >= 0 for f in ("n_docs", "nnz", "crc32")):
            raise ShardError(f"{mpath}: shard entry {k} lacks valid n_docs / nnz / crc32")
        total += e["n_docs"]
    if total != man.get("n_docs"):
        raise ShardError(f"{mpath}: the shards hold {total} documents but the manifest says "
                         f"{man.get('n_docs')}")


class ShardSet:
    """A saved corpus opened for streaming: shards are mapped one at a time.

    Memory held while iterating is one shard's pages plus one batch, whatever the number
    of shards.
    """

    def __init__(self, path, verify: bool = True):
        self.path = os.fspath(path)
        mpath = os.path.join(self.path, MANIFEST)
        if not os.path.isdir(self.path):
            old = leftover_old(self.path)
            hint = f"; an interrupted save left the previous corpus at {old[0]}" if old else ""
            raise ShardError(f"{self.path} is not a saved fastprob corpus (no such directory){hint}")
        try:
            with open(mpath, encoding="utf-8") as f:
                man = json.load(f)
        except FileNotFoundError:
            raise ShardError(f"{self.path} has no manifest.json: the save was interrupted or this "
                             "is not a fastprob corpus") from None
        except json.JSONDecodeError as exc:
            raise ShardError(f"{mpath} is corrupted ({exc})") from None
        _check_manifest(man, mpath)
        self.manifest = man
        self.verify = verify
        self.vocab = man["vocab"]
        self.author_names = man["author_names"]
        self.time_values = np.asarray(man["time_values"], dtype=np.float64)
        self.n_docs = int(man["n_docs"])
        rep = man.get("report") or {}
        # version 1 manifests kept the origins in the report only
        self.time_origin = man["time_origin"] if "time_origin" in man else rep.get("time_origin")
        ao = man["author_origin"] if "author_origin" in man else rep.get("author_origin")
        self.author_origin = None if ao is None else np.asarray(ao, dtype=np.float64)

    def __len__(self):
        return self.n_docs

    @property
    def n_shards(self) -> int:
        return len(self.manifest["shards"])

    def shard_path(self, i: int) -> str:
        """Path of shard ``i`` (its name was checked when the manifest was read)."""
        return os.path.join(self.path, self.manifest["shards"][i]["file"])

    def _empty(self) -> Corpus:
        z = np.zeros(0)
        return self._corpus(dict(indptr=np.zeros(1, np.int64), indices=z, counts=z, authors=z, times=z,
                                 timestamps=z), "(no shards)")

    def _corpus(self, arrs: dict, where: str) -> Corpus:
        man = self.manifest
        try:
            return Corpus(**arrs, vocab=self.vocab, author_names=self.author_names,
                          time_values=self.time_values, time_mode=man["time_mode"],
                          time_width=man["time_width"], report=dict(man.get("report", {})),
                          time_origin=self.time_origin, author_origin=self.author_origin)
        except CorpusError as exc:
            raise ShardError(f"{where} does not fit its manifest: {exc}; restore it from a backup "
                             "or rebuild the corpus") from None

    def shard(self, i: int, mmap: bool = True) -> Corpus:
        entry = self.manifest["shards"][i]
        path = self.shard_path(i)
        arrs = read_shard(path, mmap=mmap, verify=self.verify, expect=entry)
        if int(arrs["indptr"].shape[0]) - 1 != entry["n_docs"] or int(arrs["indices"].shape[0]) != entry["nnz"]:
            raise ShardError(f"shard {path} does not match the manifest (replaced or stale file)")
        return self._corpus(arrs, f"shard {path}")

    def iter_shards(self, order=None):
        for i in (range(self.n_shards) if order is None else order):
            c = self.shard(i)
            yield c
            del c  # unmap before the next shard so resident pages do not pile up

    def iter_batches(self, batch_size: int, shuffle: bool = True, seed=None):
        """Batches of ``batch_size`` documents in a two-level random order.

        Shards are visited in a random order and documents in a random order within each
        shard (a uniform global shuffle would need random access to every shard at once);
        the remainder of a shard is carried into the next batch, so every batch but the
        last has exactly ``batch_size`` documents.
        """
        rng = np.random.default_rng(seed)
        order = rng.permutation(self.n_shards) if shuffle else range(self.n_shards)
        carry = None
        for c in self.iter_shards(order):
            idx = rng.permutation(c.n_docs) if shuffle else np.arange(c.n_docs)
            start = 0
            if carry is not None:
                need = batch_size - carry.n_docs
                yield_batch = concat([carry, c.subset(idx[:need])])
                start = need
                if yield_batch.n_docs == batch_size:
                    yield yield_batch
                    carry = None
                else:
                    carry = yield_batch
                    continue
            for s in range(start, c.n_docs, batch_size):
                b = c.subset(idx[s:s + batch_size])
                if b.n_docs == batch_size:
                    yield b
                else:
                    carry = b
        if carry is not None and carry.n_docs:
            yield carry

    def load(self) -> Corpus:
        parts = [self.shard(i, mmap=(self.n_shards == 1)) for i in range(self.n_shards)]
        c = self._empty() if not parts else parts[0] if len(parts) == 1 else concat(parts)
        c.report = dict(self.manifest.get("report", {}))
        return c


def concat(parts) -> Corpus:
    """Concatenate corpora that share vocabulary, authors and time steps."""
    first = parts[0]
    for p in parts[1:]:
        if p.vocab is not first.vocab and p.vocab != first.vocab:
            raise CorpusError("cannot concatenate corpora with different vocabularies; remap first")
    nnz = np.cumsum([0] + [p.nnz for p in parts])
    indptr = np.concatenate([[0]] + [p.indptr[1:] + o for p, o in zip(parts, nnz[:-1])])
    cat = lambda name: np.concatenate([getattr(p, name) for p in parts])  # noqa: E731
    return first._with(indptr=indptr, indices=cat("indices"), counts=cat("counts"),
                       authors=cat("authors"), times=cat("times"), timestamps=cat("timestamps"))


def load_corpus(path, mmap: bool = True, verify: bool = True) -> Corpus:
    return ShardSet(path, verify=verify).load()
