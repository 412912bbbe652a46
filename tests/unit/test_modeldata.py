"""Model data: file:// folders and archives, s3:// through a stubbed client, and tar-slip."""

from __future__ import annotations

import io
import tarfile
from pathlib import Path

import boto3
import pytest
from botocore.response import StreamingBody
from botocore.stub import Stubber

from greenshift.fleet.modeldata import (
    ModelData,
    ModelDataError,
    ModelSource,
    container_of,
    safe_extract,
    source_of,
)


def _archive(path: Path, members: list[tuple[tarfile.TarInfo, bytes | None]]) -> Path:
    with tarfile.open(path, "w:gz") as tar:
        for info, data in members:
            if data is not None:
                info.size = len(data)
                tar.addfile(info, io.BytesIO(data))
            else:
                tar.addfile(info)
    return path


def _file(name: str) -> tarfile.TarInfo:
    return tarfile.TarInfo(name)


def _link(name: str, target: str, kind: bytes) -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.type = kind
    info.linkname = target
    return info


def test_extracts_a_plain_archive(tmp_path: Path) -> None:
    archive = _archive(
        tmp_path / "m.tar.gz",
        [
            (_file("code/inference.py"), b"x = 1\n"),
            (_link("code/alias.py", "inference.py", tarfile.SYMTYPE), None),
        ],
    )
    safe_extract(archive, tmp_path / "out")
    assert (tmp_path / "out/code/inference.py").read_text() == "x = 1\n"
    assert (tmp_path / "out/code/alias.py").resolve() == (tmp_path / "out/code/inference.py")


@pytest.mark.parametrize(
    ("member", "why"),
    [
        (_file("/etc/evil"), "absolute"),
        (_file("../evil"), "'..'"),
        (_file("code/../../evil"), "'..'"),
        (_link("code/escape", "../../outside", tarfile.SYMTYPE), "link leaves"),
        (_link("code/abs", "/etc/passwd", tarfile.SYMTYPE), "link leaves"),
        (_link("code/hard", "../../outside", tarfile.LNKTYPE), "link leaves"),
        (_link("code/hardabs", "/etc/passwd", tarfile.LNKTYPE), "link leaves"),
    ],
)
def test_refuses_members_that_escape(tmp_path: Path, member: tarfile.TarInfo, why: str) -> None:
    data = b"evil" if member.isfile() else None
    archive = _archive(tmp_path / "m.tar.gz", [(_file("ok.txt"), b"ok"), (member, data)])
    with pytest.raises(ModelDataError, match=why):
        safe_extract(archive, tmp_path / "out")
    # Checked before anything is written: not even the harmless member is there.
    assert not (tmp_path / "out/ok.txt").exists()
    assert not (tmp_path / "evil").exists()


def test_refuses_a_symlink_then_a_file_through_it(tmp_path: Path) -> None:
    archive = _archive(
        tmp_path / "m.tar.gz",
        [
            (_link("dir", str(tmp_path / "elsewhere"), tarfile.SYMTYPE), None),
            (_file("dir/evil"), b"evil"),
        ],
    )
    with pytest.raises(ModelDataError):
        safe_extract(archive, tmp_path / "out")
    assert not (tmp_path / "elsewhere").exists()


@pytest.mark.parametrize("kind", [tarfile.CHRTYPE, tarfile.BLKTYPE, tarfile.FIFOTYPE])
def test_refuses_devices_and_fifos(tmp_path: Path, kind: bytes) -> None:
    info = tarfile.TarInfo("dev")
    info.type = kind
    archive = _archive(tmp_path / "m.tar.gz", [(info, None)])
    with pytest.raises(ModelDataError, match="device"):
        safe_extract(archive, tmp_path / "out")


def test_file_directory_is_used_in_place(tmp_path: Path) -> None:
    (tmp_path / "model").mkdir()
    data = ModelData(tmp_path / "cache")
    source = source_of({"ModelDataUrl": f"file://{tmp_path}/model"})
    assert data.prepare(source) == tmp_path / "model"


def test_file_archive_is_extracted_once_into_the_cache(tmp_path: Path) -> None:
    archive = _archive(tmp_path / "m.tar.gz", [(_file("code/inference.py"), b"v = 1\n")])
    data = ModelData(tmp_path / "cache")
    source = source_of({"ModelDataUrl": f"file://{archive}"})
    first = data.prepare(source)
    assert (first / "code/inference.py").read_text() == "v = 1\n"
    archive.unlink()  # a second prepare must not need the archive again
    assert data.prepare(source) == first


def test_missing_file_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(ModelDataError, match="not found"):
        ModelData(tmp_path).prepare(ModelSource(f"file://{tmp_path}/nope.tar.gz", True))


def test_source_of_a_create_model_request() -> None:
    spec = {"PrimaryContainer": {"Image": "x", "ModelDataUrl": "s3://b/k/model.tar.gz"}}
    assert source_of(container_of(spec)) == ModelSource("s3://b/k/model.tar.gz", True)
    spec2 = {
        "Containers": [
            {
                "ModelDataSource": {
                    "S3DataSource": {
                        "S3Uri": "s3://b/prefix/",
                        "S3DataType": "S3Prefix",
                        "CompressionType": "None",
                    }
                }
            }
        ]
    }
    assert source_of(container_of(spec2)) == ModelSource("s3://b/prefix/", False)
    assert source_of(container_of({})) == ModelSource(None, False)


def _s3() -> tuple[object, Stubber]:
    client = boto3.client(
        "s3", region_name="us-east-1", aws_access_key_id="x", aws_secret_access_key="x"
    )
    return client, Stubber(client)


def _body(data: bytes) -> StreamingBody:
    return StreamingBody(io.BytesIO(data), len(data))


def test_s3_archive_is_downloaded_and_extracted(tmp_path: Path) -> None:
    archive = _archive(tmp_path / "m.tar.gz", [(_file("code/inference.py"), b"s3 = 1\n")])
    client, stub = _s3()
    stub.add_response(
        "get_object",
        {"Body": _body(archive.read_bytes())},
        {"Bucket": "bucket", "Key": "models/m.tar.gz"},
    )
    with stub:
        path = ModelData(tmp_path / "cache", client).prepare(
            ModelSource("s3://bucket/models/m.tar.gz", True)
        )
    stub.assert_no_pending_responses()
    assert (path / "code/inference.py").read_text() == "s3 = 1\n"


def test_s3_prefix_is_copied(tmp_path: Path) -> None:
    client, stub = _s3()
    stub.add_response(
        "list_objects_v2",
        {
            "Contents": [{"Key": "pre/code/inference.py"}, {"Key": "pre/weights.bin"}],
            "IsTruncated": False,
        },
        {"Bucket": "b", "Prefix": "pre/"},
    )
    stub.add_response(
        "get_object", {"Body": _body(b"code")}, {"Bucket": "b", "Key": "pre/code/inference.py"}
    )
    stub.add_response(
        "get_object", {"Body": _body(b"w")}, {"Bucket": "b", "Key": "pre/weights.bin"}
    )
    with stub:
        path = ModelData(tmp_path / "cache", client).prepare(ModelSource("s3://b/pre/", False))
    assert (path / "code/inference.py").read_bytes() == b"code"
    assert (path / "weights.bin").read_bytes() == b"w"


def test_s3_failure_leaves_no_cache_entry(tmp_path: Path) -> None:
    client, stub = _s3()
    stub.add_client_error("get_object", "NoSuchKey", "The specified key does not exist.")
    data = ModelData(tmp_path / "cache", client)
    with stub, pytest.raises(ModelDataError, match="NoSuchKey"):
        data.prepare(ModelSource("s3://b/missing.tar.gz", True))
    assert list((tmp_path / "cache").iterdir()) == []
