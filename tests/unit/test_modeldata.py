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
    check_members,
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
    where = {"Bucket": "bucket", "Key": "models/m.tar.gz"}
    stub.add_response("head_object", {"ETag": '"e1"', "ContentLength": 10}, where)
    stub.add_response(
        "get_object", {"Body": _body(archive.read_bytes())}, {**where, "IfMatch": '"e1"'}
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
    stub.add_response("head_object", {"ETag": '"e"', "ContentLength": 1})
    stub.add_client_error("get_object", "NoSuchKey", "The specified key does not exist.")
    data = ModelData(tmp_path / "cache", client)
    with stub, pytest.raises(ModelDataError, match="NoSuchKey"):
        data.prepare(ModelSource("s3://b/missing.tar.gz", True))
    assert [p for p in (tmp_path / "cache").iterdir() if not p.name.startswith(".")] == []


# --- issue 14 (5, 6) and issue 19 (6): links by any route, size, keys, collection ---------------


def _dir(name: str) -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.type = tarfile.DIRTYPE
    return info


def _sym(name: str, target: str) -> tarfile.TarInfo:
    return _link(name, target, tarfile.SYMTYPE)


def test_a_symlink_chain_near_path_max_is_refused_without_tarfiles_filter() -> None:
    """The shape of CVE-2025-4517's archive (a chain of links to long folder names, then a link
    that climbs out through the chain), which gets through the `data` filter on Python 3.11.7.
    `check_members` judges the member list alone: no disk, no filter."""
    comp = "d" * 247
    steps = "abcdefghijklmnop"
    members: list[tarfile.TarInfo] = []
    path = ""
    for step in steps:
        members.append(_dir(f"{path}{comp}"))
        members.append(_sym(f"{path}{step}", comp))
        path = f"{path}{comp}/"
    link_path = "/".join(steps) + "/" + "l" * 254
    members.append(_sym(link_path, "../" * len(steps)))
    members.append(_sym("escape", f"{link_path}/../../../../../../../etc"))
    with pytest.raises(ModelDataError, match="through a link"):
        check_members(members)


@pytest.mark.parametrize(
    ("members", "why"),
    [
        ([_sym("a", "b"), _sym("b", "../..")], "link through a link"),
        ([_sym("a", "x/../../..")], "leaves the directory"),
        ([_sym("a", "sub"), _dir("sub"), _sym("b", "a/x")], "link through a link"),
        ([_dir("sub"), _sym("a", "sub"), _file("a/x")], "written through a link"),
        ([_link("h", "../etc/passwd", tarfile.LNKTYPE)], "leaves the directory"),
        ([_link("h", "nothing", tarfile.LNKTYPE)], "hard link to no file"),
        ([_sym("s", "./")], "leaves the directory"),
    ],
)
def test_links_that_could_escape_by_any_route_are_refused(
    members: list[tarfile.TarInfo], why: str
) -> None:
    with pytest.raises(ModelDataError, match=why):
        check_members(members)


def test_links_that_stay_inside_are_kept(tmp_path: Path) -> None:
    archive = _archive(
        tmp_path / "ok.tar.gz",
        [(_file("w/real.bin"), b"w"), (_sym("w/alias.bin", "real.bin"), None)],
    )
    safe_extract(archive, tmp_path / "out")
    assert (tmp_path / "out" / "w" / "alias.bin").read_bytes() == b"w"


def test_expanded_size_is_bounded_before_anything_is_written(tmp_path: Path) -> None:
    archive = _archive(
        tmp_path / "big.tar.gz", [(_file("a.bin"), b"x" * 600), (_file("b.bin"), b"x" * 600)]
    )
    data = ModelData(tmp_path / "cache", max_bytes=1000)
    with pytest.raises(ModelDataError, match="more than 1000 bytes"):
        data.prepare(source_of({"ModelDataUrl": f"file://{archive}"}))
    assert [p for p in (tmp_path / "cache").iterdir() if not p.name.startswith(".")] == []
    assert (
        ModelData(tmp_path / "cache2", max_bytes=2000)
        .prepare(source_of({"ModelDataUrl": f"file://{archive}"}))
        .joinpath("b.bin")
        .stat()
        .st_size
        == 600
    )


def test_rebuilt_archive_at_the_same_path_is_extracted_anew(tmp_path: Path) -> None:
    path = tmp_path / "m.tar.gz"
    data = ModelData(tmp_path / "cache")
    source = source_of({"ModelDataUrl": f"file://{path}"})
    _archive(path, [(_file("code/inference.py"), b"v = 1\n")])
    first = data.prepare(source)
    assert data.prepare(source) == first  # unchanged: the same copy
    _archive(path, [(_file("code/inference.py"), b"v = 2\n")])
    second = data.prepare(source)
    assert second != first
    assert (second / "code/inference.py").read_text() == "v = 2\n"
    assert (first / "code/inference.py").read_text() == "v = 1\n"  # running fleets keep theirs


def test_url_variants_of_one_archive_are_one_copy(tmp_path: Path) -> None:
    path = _archive(tmp_path / "m.tar.gz", [(_file("x"), b"1")])
    data = ModelData(tmp_path / "cache")
    copies = {
        data.prepare(source_of({"ModelDataUrl": f"file://{path}{tail}"}))
        for tail in ("", "?a", "#c", "?a=1#c")
    }
    assert len(copies) == 1
    assert len([p for p in (tmp_path / "cache").iterdir() if not p.name.startswith(".")]) == 1


def test_file_url_naming_another_host_is_refused(tmp_path: Path) -> None:
    path = _archive(tmp_path / "m.tar.gz", [(_file("x"), b"1")])
    with pytest.raises(ModelDataError, match="names host 'elsewhere'"):
        ModelData(tmp_path / "cache").prepare(
            source_of({"ModelDataUrl": f"file://elsewhere{path}"})
        )
    local = source_of({"ModelDataUrl": f"file://localhost{path}"})
    assert (ModelData(tmp_path / "cache").prepare(local) / "x").read_bytes() == b"1"


def test_unused_entries_are_collected_used_ones_kept(tmp_path: Path) -> None:
    data = ModelData(tmp_path / "cache")
    old = data.prepare(
        source_of(
            {"ModelDataUrl": f"file://{_archive(tmp_path / 'a.tar.gz', [(_file('a'), b'1')])}"}
        )
    )
    live = data.prepare(
        source_of(
            {"ModelDataUrl": f"file://{_archive(tmp_path / 'b.tar.gz', [(_file('b'), b'2')])}"}
        )
    )
    assert data.collect(in_use=[live], unused_for_seconds=3600) == []  # both recent
    assert data.collect(in_use=[live], unused_for_seconds=0) == [old]
    assert not old.exists() and live.exists()
