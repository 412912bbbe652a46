"""Model data: turn a model's `ModelDataUrl` (or `ModelDataSource.S3DataSource`) into a local
directory an instance can serve from.

- `file:///dir`: used in place (a local extension of SageMaker; nothing to copy).
- `file:///model.tar.gz`: extracted safely (see `safe_extract`).
- `s3://bucket/key.tar.gz`: downloaded through boto3, then extracted like a local archive.
- `s3://bucket/prefix/` (or `S3DataType: S3Prefix` without compression): every object under the
  prefix is downloaded, keeping its relative path.

Archives are extracted once per model into a shared cache (`<cache>/<digest of the source>`),
atomically (a temporary folder renamed into place), so instances of one model share it and a
crash half-way leaves nothing that looks complete. The S3 client is injectable so tests can pass a
botocore Stubber-backed client.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import tarfile
import tempfile
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any
from urllib.parse import unquote, urlparse

from greenshift.fleet.runtime import container_of

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
        return hashlib.sha256(f"{self.url}|{self.compressed}".encode()).hexdigest()[:16]


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


def _inside(root: Path, target: Path) -> bool:
    try:
        target.relative_to(root)
        return True
    except ValueError:
        return False


def check_member(root: Path, member: tarfile.TarInfo) -> None:
    """Refuse anything that could land outside `root` or is not a plain file/folder/link:
    absolute names, `..` components, links whose target escapes, devices and FIFOs."""
    name = member.name
    parts = PurePosixPath(name).parts
    if name.startswith(("/", "\\")) or (parts and ":" in parts[0]):
        raise ModelDataError(f"unsafe archive member {name!r}: absolute path")
    if ".." in parts:
        raise ModelDataError(f"unsafe archive member {name!r}: '..' in path")
    dest = (root / name).resolve()
    if not _inside(root, dest):
        raise ModelDataError(f"unsafe archive member {name!r}: outside the model directory")
    if member.issym():
        link = PurePosixPath(member.linkname)
        if link.is_absolute() or not _inside(root, (dest.parent / link).resolve()):
            raise ModelDataError(f"unsafe archive member {name!r}: link leaves the directory")
    elif member.islnk():
        link = PurePosixPath(member.linkname)
        if link.is_absolute() or ".." in link.parts or not _inside(root, (root / link).resolve()):
            raise ModelDataError(f"unsafe archive member {name!r}: link leaves the directory")
    elif not (member.isfile() or member.isdir()):
        raise ModelDataError(f"unsafe archive member {name!r}: device or special file")


def safe_extract(archive: Path, dest: Path) -> None:
    """Extract a (gzipped) tar into `dest`, checking every member first; nothing is written
    when any member is unsafe. Python's `data` filter is applied as a second guard."""
    dest.mkdir(parents=True, exist_ok=True)
    root = dest.resolve()
    try:
        with tarfile.open(archive, "r:*") as tar:
            members = tar.getmembers()
            for member in members:
                check_member(root, member)
            tar.extractall(root, members=members, filter="data")
    except tarfile.TarError as exc:
        raise ModelDataError(f"cannot extract {archive.name}: {exc}") from exc


# --- fetching ------------------------------------------------------------------------------------


def _s3_parts(url: str) -> tuple[str, str]:
    parsed = urlparse(url)
    return parsed.netloc, parsed.path.lstrip("/")


def _default_s3_client() -> Any:
    import boto3

    return boto3.client("s3")


class ModelData:
    """Prepares model directories under `cache_dir`. One per agent; safe to call repeatedly."""

    def __init__(self, cache_dir: Path, s3_client: Any = None) -> None:
        self.cache_dir = cache_dir
        self._s3 = s3_client

    @property
    def s3(self) -> Any:
        if self._s3 is None:
            self._s3 = _default_s3_client()
        return self._s3

    def prepare(self, source: ModelSource) -> Path:
        """A local directory holding the model data (created once, then reused)."""
        if source.url is None:
            return self._empty()
        scheme = urlparse(source.url).scheme
        if scheme == "file":
            path = Path(unquote(urlparse(source.url).path))
            if path.is_dir():
                return path
            if not path.is_file() and not (self.cache_dir / source.key).is_dir():
                raise ModelDataError(f"model data not found: {source.url}")
            return self._cached(source, lambda tmp: safe_extract(path, tmp))
        if scheme == "s3":
            if source.compressed:
                return self._cached(source, lambda tmp: self._s3_archive(source.url or "", tmp))
            return self._cached(source, lambda tmp: self._s3_prefix(source.url or "", tmp))
        raise ModelDataError(f"unsupported ModelDataUrl scheme: {source.url}")

    def _empty(self) -> Path:
        path = self.cache_dir / "empty"
        path.mkdir(parents=True, exist_ok=True)
        return path

    def _cached(self, source: ModelSource, fill: Any) -> Path:
        final = self.cache_dir / source.key
        if final.is_dir():
            return final
        self.cache_dir.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=f".{source.key}-", dir=self.cache_dir))
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
        return final

    def _s3_archive(self, url: str, dest: Path) -> None:
        bucket, key = _s3_parts(url)
        archive = dest / ".download.tar.gz"
        try:
            response = self.s3.get_object(Bucket=bucket, Key=key)
            with archive.open("wb") as out:
                shutil.copyfileobj(response["Body"], out)
        except Exception as exc:
            raise ModelDataError(f"cannot download {url}: {exc}") from exc
        try:
            safe_extract(archive, dest)
        finally:
            archive.unlink(missing_ok=True)

    def _s3_prefix(self, url: str, dest: Path) -> None:
        bucket, prefix = _s3_parts(url)
        root = dest.resolve()
        token: str | None = None
        while True:
            kwargs: dict[str, Any] = {"Bucket": bucket, "Prefix": prefix}
            if token:
                kwargs["ContinuationToken"] = token
            page = self.s3.list_objects_v2(**kwargs)
            for item in page.get("Contents", []):
                key = item["Key"]
                relative = key[len(prefix) :].lstrip("/") or PurePosixPath(key).name
                target = (root / relative).resolve()
                if ".." in PurePosixPath(relative).parts or not _inside(root, target):
                    raise ModelDataError(f"unsafe S3 key {key!r}")
                if key.endswith("/"):
                    continue
                target.parent.mkdir(parents=True, exist_ok=True)
                body = self.s3.get_object(Bucket=bucket, Key=key)["Body"]
                with target.open("wb") as out:
                    shutil.copyfileobj(body, out)
            token = page.get("NextContinuationToken")
            if not page.get("IsTruncated") or not token:
                return
