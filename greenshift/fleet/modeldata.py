"""Model data: turn a model's `ModelDataUrl` (or `ModelDataSource.S3DataSource`) into a local
directory an instance can serve from.

- `file:///dir`: used in place (a local extension of SageMaker; nothing to copy).
- `file:///model.tar.gz`: extracted safely (see `safe_extract`). `file://host/...` names another
  machine: refused (only `file:///` and `file://localhost/`).
- `s3://bucket/key.tar.gz`: downloaded through boto3, then extracted like a local archive.
- `s3://bucket/prefix/` (or `S3DataType: S3Prefix` without compression): every object under the
  prefix is downloaded, keeping its relative path.

Cache (`<cache>/<content key>`), keyed by what the data holds, not by its URL: for a local
archive its size, mtime and SHA-256 (the digest is remembered per path/size/mtime/inode, so an
unchanged archive is not read again); for S3 the ETag and size (of every object, for a prefix).
So an archive rebuilt at the same path or key is extracted anew, and `?a` / `#c` variants of
one URL are one copy. A source that has gone away since (the archive deleted) falls back to the
copy last made from that URL, so a relaunch of a running fleet still finds its data.
Entries are made atomically (a temporary folder renamed into place) and collected when no
fleet uses them and they were not used for a while (`collect`). The expanded size of an archive
is bounded (`max_bytes`, setting `GREENSHIFT_MODEL_DATA_MAX_BYTES`, default 20 GiB) and checked
from the archive's headers before anything is written. The S3 client is injectable so tests can
pass a botocore Stubber-backed client.
"""

from __future__ import annotations

import hashlib
import os
import posixpath
import shutil
import tarfile
import tempfile
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any
from urllib.parse import unquote, urlparse

from greenshift.fleet.runtime import container_of

DEFAULT_MAX_BYTES = 20 * 1024**3

__all__ = ["ModelData", "ModelDataError", "ModelSource", "container_of", "source_of"]


class ModelDataError(Exception):
    """The model data cannot be fetched or is unsafe to unpack."""


@dataclass(frozen=True)
class ModelSource:
    """Where a model's data lives. `url` is None for a model without data (code-only images)."""

    url: str | None
    compressed: bool  # a .tar.gz to extract, rather than a folder / prefix to copy

    @property
    def key(self) -> str:
        """The identity of the URL (query and fragment dropped), not of its content."""
        where = urlparse(self.url or "")
        plain = f"{where.scheme}://{where.netloc}{where.path}"
        return hashlib.sha256(f"{plain}|{self.compressed}".encode()).hexdigest()[:16]


def source_of(container: dict[str, Any]) -> ModelSource:
    """ModelDataUrl wins; else ModelDataSource.S3DataSource (S3Uri, CompressionType)."""
    url = container.get("ModelDataUrl")
    if url:
        return ModelSource(url, _looks_compressed(url))
    s3 = (container.get("ModelDataSource") or {}).get("S3DataSource") or {}
    if s3.get("S3Uri"):
        return ModelSource(s3["S3Uri"], s3.get("CompressionType") == "Gzip")
    return ModelSource(None, False)


def _looks_compressed(url: str) -> bool:
    path = urlparse(url).path
    return path.endswith((".tar.gz", ".tgz", ".tar"))


# --- safe extraction ---------------------------------------------------------------------------
#
# Checked on the member list alone, never by resolving paths on the disk and never relying on
# tarfile's `data` filter (CVE-2025-4517: on Python 3.11.7 a symlink chain near PATH_MAX gets
# through it). Names and link targets are normalised lexically; a link may not leave the folder,
# no member may be written through a link, and no link may point through another link. Then
# every path the kernel resolves is the lexical one, so nothing lands outside the folder.


def _normal(name: str) -> str:
    return posixpath.normpath(name.replace("\\", "/")).lstrip("/") if name else name


def _escapes(path: str) -> bool:
    return path == ".." or path.startswith("../") or posixpath.isabs(path)


def _prefixes(path: str) -> Iterable[str]:
    parts = path.split("/")
    for i in range(1, len(parts)):
        yield "/".join(parts[:i])


def check_members(members: list[tarfile.TarInfo], max_bytes: int = DEFAULT_MAX_BYTES) -> None:
    """Refuse the archive when any member could land outside the folder or is not a plain
    file/folder/link, or when its files add up to more than `max_bytes`."""
    links = {_normal(m.name) for m in members if m.issym() or m.islnk()}
    files = {_normal(m.name) for m in members if m.isfile()}
    total = 0
    for member in members:
        raw = member.name
        name = _normal(raw)
        parts = PurePosixPath(raw.replace("\\", "/")).parts
        if raw.startswith(("/", "\\")) or (parts and ":" in parts[0]):
            raise ModelDataError(f"unsafe archive member {raw!r}: absolute path")
        if ".." in parts or _escapes(name):
            raise ModelDataError(f"unsafe archive member {raw!r}: '..' in path")
        if any(prefix in links for prefix in _prefixes(name)):
            raise ModelDataError(f"unsafe archive member {raw!r}: written through a link")
        if member.issym() or member.islnk():
            target = member.linkname.replace("\\", "/")
            if posixpath.isabs(target):
                raise ModelDataError(f"unsafe archive member {raw!r}: link leaves the directory")
            base = posixpath.dirname(name) if member.issym() else ""
            resolved = posixpath.normpath(posixpath.join(base, target))
            if _escapes(resolved) or resolved in ("", "."):
                raise ModelDataError(f"unsafe archive member {raw!r}: link leaves the directory")
            # Lexical resolution equals the kernel's only if no step of the target is a link.
            steps = [*_prefixes(resolved), resolved]
            if any(step in links for step in steps):
                raise ModelDataError(f"unsafe archive member {raw!r}: link through a link")
            if member.islnk() and resolved not in files:
                raise ModelDataError(f"unsafe archive member {raw!r}: hard link to no file")
        elif member.isfile():
            total += member.size
            if total > max_bytes:
                raise ModelDataError(
                    f"model archive expands to more than {max_bytes} bytes "
                    "(GREENSHIFT_MODEL_DATA_MAX_BYTES)"
                )
        elif not member.isdir():
            raise ModelDataError(f"unsafe archive member {raw!r}: device or special file")


def check_member(root: Path, member: tarfile.TarInfo) -> None:
    """One member on its own (see `check_members`)."""
    check_members([member])


def safe_extract(archive: Path, dest: Path, max_bytes: int = DEFAULT_MAX_BYTES) -> None:
    """Extract a (gzipped) tar into `dest`, checking every member first; nothing is written
    when any member is unsafe or the whole is too large. Python's `data` filter is applied as a
    second guard only."""
    dest.mkdir(parents=True, exist_ok=True)
    root = dest.resolve()
    try:
        with tarfile.open(archive, "r:*") as tar:
            members = tar.getmembers()
            check_members(members, max_bytes)
            tar.extractall(root, members=members, filter="data")
    except tarfile.TarError as exc:
        raise ModelDataError(f"cannot extract {archive.name}: {exc}") from exc


def _inside(root: Path, target: Path) -> bool:
    try:
        target.relative_to(root)
        return True
    except ValueError:
        return False


def file_path(url: str) -> Path:
    """The local path of a `file://` URL; another host's is refused."""
    where = urlparse(url)
    if where.netloc not in ("", "localhost"):
        raise ModelDataError(
            f"ModelDataUrl {url} names host {where.netloc!r}: only file:///path (this machine)"
        )
    return Path(unquote(where.path))


def file_digest(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as data:
        for block in iter(lambda: data.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


# --- fetching ------------------------------------------------------------------------------------


def _s3_parts(url: str) -> tuple[str, str]:
    parsed = urlparse(url)
    return parsed.netloc, parsed.path.lstrip("/")


def _default_s3_client() -> Any:
    import boto3

    return boto3.client("s3")


class ModelData:
    """Prepares model directories under `cache_dir`. One per agent; safe to call repeatedly."""

    def __init__(
        self, cache_dir: Path, s3_client: Any = None, max_bytes: int = DEFAULT_MAX_BYTES
    ) -> None:
        self.cache_dir = cache_dir
        self.max_bytes = max_bytes
        self._s3 = s3_client

    @property
    def s3(self) -> Any:
        if self._s3 is None:
            self._s3 = _default_s3_client()
        return self._s3

    def prepare(self, source: ModelSource) -> Path:
        """A local directory holding the model data (created once per content, then reused)."""
        if source.url is None:
            return self._empty()
        url = source.url
        scheme = urlparse(url).scheme
        if scheme == "file":
            path = file_path(url)
            if path.is_dir():
                return path
            if not path.is_file():
                return self._last_made(source)
            key = self._content_key("file", self._local_digest(path), source.compressed)
            return self._cached(source, key, lambda tmp: safe_extract(path, tmp, self.max_bytes))
        if scheme == "s3":
            bucket, object_key = _s3_parts(url)
            if source.compressed:
                try:
                    head = self.s3.head_object(Bucket=bucket, Key=object_key)
                except Exception as exc:
                    raise ModelDataError(f"cannot download {url}: {exc}") from exc
                etag = str(head.get("ETag", ""))
                identity = f"{etag}|{head.get('ContentLength')}"
                key = self._content_key("s3", identity, True)
                return self._cached(source, key, lambda tmp: self._s3_archive(url, etag, tmp))
            objects = self._s3_listing(url)
            identity = "\n".join(f"{k}|{etag}|{size}" for k, etag, size in objects)
            key = self._content_key("s3-prefix", identity, False)
            return self._cached(source, key, lambda tmp: self._s3_prefix(url, objects, tmp))
        raise ModelDataError(f"unsupported ModelDataUrl scheme: {url}")

    def location(self, source: ModelSource) -> Path | None:
        """Where `prepare` put this source's data last (None if never), without fetching."""
        if source.url is None:
            return self._empty()
        if urlparse(source.url).scheme == "file":
            with_path = file_path(source.url)
            if with_path.is_dir():
                return with_path
        memo = self._memo("sources", source.key)
        key = memo.read_text().strip() if memo.is_file() else ""
        return self.cache_dir / key if key and (self.cache_dir / key).is_dir() else None

    def collect(self, in_use: Iterable[Path], unused_for_seconds: float) -> list[Path]:
        """Remove cache entries that no fleet uses and nobody prepared for that long, and the
        leftovers of interrupted extractions."""
        keep = {p.resolve() for p in in_use}
        now = time.time()
        removed: list[Path] = []
        if not self.cache_dir.is_dir():
            return removed
        for entry in self.cache_dir.iterdir():
            if not entry.is_dir() or entry.name == "empty":
                continue
            if entry.name.startswith("."):
                if entry.name.startswith(".tmp-") and now - entry.stat().st_mtime > 3600:
                    shutil.rmtree(entry, ignore_errors=True)
                    removed.append(entry)
                continue
            if entry.resolve() in keep:
                continue
            used = self._memo("used", entry.name)
            last = used.stat().st_mtime if used.exists() else entry.stat().st_mtime
            if now - last > unused_for_seconds:
                shutil.rmtree(entry, ignore_errors=True)
                used.unlink(missing_ok=True)
                removed.append(entry)
        return removed

    # --- keys -------------------------------------------------------------------------------

    def _content_key(self, kind: str, identity: str, compressed: bool) -> str:
        return hashlib.sha256(f"{kind}|{compressed}|{identity}".encode()).hexdigest()[:24]

    def _local_digest(self, path: Path) -> str:
        """size, mtime and SHA-256 of the archive; the digest is remembered for this exact
        (path, size, mtime, inode), so an unchanged archive is hashed once."""
        stat = path.stat()
        stamp = f"{path.resolve()}|{stat.st_size}|{stat.st_mtime_ns}|{stat.st_ino}"
        memo = self._memo("digests", hashlib.sha256(stamp.encode()).hexdigest()[:24])
        if memo.is_file():
            digest = memo.read_text().strip()
        else:
            digest = file_digest(path)
            _write_atomic(memo, digest)
        return f"{stat.st_size}|{stat.st_mtime_ns}|{digest}"

    def _memo(self, kind: str, name: str) -> Path:
        return self.cache_dir / f".{kind}" / name

    def _last_made(self, source: ModelSource) -> Path:
        found = self.location(source)
        if found is None:
            raise ModelDataError(f"model data not found: {source.url}")
        return found

    # --- entries ----------------------------------------------------------------------------

    def _empty(self) -> Path:
        path = self.cache_dir / "empty"
        path.mkdir(parents=True, exist_ok=True)
        return path

    def _cached(self, source: ModelSource, key: str, fill: Callable[[Path], None]) -> Path:
        final = self.cache_dir / key
        if not final.is_dir():
            self.cache_dir.mkdir(parents=True, exist_ok=True)
            tmp = Path(tempfile.mkdtemp(prefix=".tmp-", dir=self.cache_dir))
            try:
                fill(tmp)
                try:
                    os.rename(tmp, final)
                except OSError:
                    if not final.is_dir():  # lost a race to another preparer: theirs is as good
                        raise
            finally:
                if tmp.exists():
                    shutil.rmtree(tmp, ignore_errors=True)
        _write_atomic(self._memo("sources", source.key), key)
        _write_atomic(self._memo("used", key), str(time.time()))
        return final

    def _s3_archive(self, url: str, etag: str, dest: Path) -> None:
        bucket, key = _s3_parts(url)
        archive = dest / ".download.tar.gz"
        try:
            # IfMatch: the object we keyed the cache by, not one replaced since.
            response = self.s3.get_object(Bucket=bucket, Key=key, IfMatch=etag)
            with archive.open("wb") as out:
                shutil.copyfileobj(response["Body"], out)
        except Exception as exc:
            raise ModelDataError(f"cannot download {url}: {exc}") from exc
        try:
            safe_extract(archive, dest, self.max_bytes)
        finally:
            archive.unlink(missing_ok=True)

    def _s3_listing(self, url: str) -> list[tuple[str, str, int]]:
        """(key, ETag, size) of every object under the prefix."""
        bucket, prefix = _s3_parts(url)
        found: list[tuple[str, str, int]] = []
        token: str | None = None
        while True:
            kwargs: dict[str, Any] = {"Bucket": bucket, "Prefix": prefix}
            if token:
                kwargs["ContinuationToken"] = token
            try:
                page = self.s3.list_objects_v2(**kwargs)
            except Exception as exc:
                raise ModelDataError(f"cannot list {url}: {exc}") from exc
            for item in page.get("Contents", []):
                found.append((item["Key"], str(item.get("ETag", "")), int(item.get("Size", 0))))
            token = page.get("NextContinuationToken")
            if not page.get("IsTruncated") or not token:
                return found

    def _s3_prefix(self, url: str, objects: list[tuple[str, str, int]], dest: Path) -> None:
        bucket, prefix = _s3_parts(url)
        root = dest.resolve()
        if sum(size for _, _, size in objects) > self.max_bytes:
            raise ModelDataError(
                f"model data under {url} is more than {self.max_bytes} bytes "
                "(GREENSHIFT_MODEL_DATA_MAX_BYTES)"
            )
        for key, _etag, _size in objects:
            relative = key[len(prefix) :].lstrip("/") or PurePosixPath(key).name
            target = (root / relative).resolve()
            if ".." in PurePosixPath(relative).parts or not _inside(root, target):
                raise ModelDataError(f"unsafe S3 key {key!r}")
            if key.endswith("/"):
                continue
            target.parent.mkdir(parents=True, exist_ok=True)
            try:
                body = self.s3.get_object(Bucket=bucket, Key=key)["Body"]
            except Exception as exc:
                raise ModelDataError(f"cannot download s3://{bucket}/{key}: {exc}") from exc
            with target.open("wb") as out:
                shutil.copyfileobj(body, out)


def _write_atomic(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(text)
    os.replace(tmp, path)
