"""Build the example container image offline: this machine's Python + serve.py, `docker import`ed.

No registry is needed: the rootfs is this interpreter, the shared libraries it and its extension
modules link (as `ldd` lists them), the standard library (without tests, IDLE, Tk) and serve.py,
at the same paths as on this host so the interpreter finds its prefix unaided. About 100 MB.

    python examples/container/build_image.py [--tag greenshift-example/echo:latest]

With network access a Dockerfile does the same (see Dockerfile beside this file).
Modes (serve.py --mode) are extra tags over the same layers: `build(tag, mode="fail")`.
"""

from __future__ import annotations

import argparse
import hashlib
import io
import json
import os
import re
import subprocess
import sys
import sysconfig
import tarfile
from collections.abc import Iterator
from pathlib import Path

HERE = Path(__file__).resolve().parent
SERVER = HERE / "serve.py"
PROGRAM = "/opt/program/serve.py"
DEFAULT_TAG = "greenshift-example/echo:latest"
_SKIP = {
    "test",
    "idlelib",
    "tkinter",
    "turtledemo",
    "ensurepip",
    "lib2to3",
    "site-packages",
    "pydoc_data",
    "unittest",
    "distutils",
}
_LDD_PATH = re.compile(r"(/\S+) \(0x")


def _interpreter() -> Path:
    return Path(os.path.realpath(sys.executable))


def _libraries(binary: Path) -> set[Path]:
    done = subprocess.run(["ldd", str(binary)], capture_output=True, text=True, check=False)
    found = set()
    for path in _LDD_PATH.findall(done.stdout):
        found.add(Path(path))
        found.add(Path(os.path.realpath(path)))
    return found


def _stdlib_files(stdlib: Path) -> Iterator[Path]:
    for root, dirs, files in os.walk(stdlib):
        rel = Path(root).relative_to(stdlib)
        if rel == Path("."):
            dirs[:] = [d for d in dirs if d not in _SKIP and not d.startswith("config-")]
        for name in files:
            if name.endswith((".opt-1.pyc", ".opt-2.pyc", ".exe")):
                continue
            yield Path(root) / name


def rootfs_files() -> list[Path]:
    """Every host file the image holds (interpreter, libraries, stdlib)."""
    python = _interpreter()
    stdlib = Path(sysconfig.get_paths()["stdlib"])
    files = set(_stdlib_files(stdlib))
    binaries = [python] + [f for f in files if f.suffix == ".so"]
    for binary in binaries:
        files.update(_libraries(binary))
    files.add(python)
    return sorted(files)


def _add_bytes(tar: tarfile.TarFile, name: str, data: bytes, mode: int = 0o644) -> None:
    info = tarfile.TarInfo(name)
    info.size = len(data)
    info.mode = mode
    tar.addfile(info, io.BytesIO(data))


def _add_dir(tar: tarfile.TarFile, name: str, mode: int = 0o755) -> None:
    info = tarfile.TarInfo(name)
    info.type = tarfile.DIRTYPE
    info.mode = mode
    tar.addfile(info)


def rootfs_tarball(out: Path) -> Path:
    # dereference: a library reached through a symlink (/lib64 -> usr/lib64) is stored as a file
    with tarfile.open(out, "w", dereference=True) as tar:
        for directory, mode in (
            ("tmp", 0o1777),
            ("opt", 0o755),
            ("opt/ml", 0o755),
            ("opt/ml/model", 0o755),
            ("opt/program", 0o755),
        ):
            _add_dir(tar, directory, mode)
        for path in rootfs_files():
            tar.add(str(path), arcname=str(path).lstrip("/"), recursive=False)
        _add_bytes(tar, PROGRAM.lstrip("/"), SERVER.read_bytes())
    return out


def _fingerprint() -> str:
    """Changes when the interpreter or the server changes: the cache key of the base image."""
    digest = hashlib.sha256()
    digest.update(str(_interpreter()).encode())
    digest.update(sys.version.encode())
    digest.update(SERVER.read_bytes())
    digest.update(Path(__file__).read_bytes())
    return digest.hexdigest()[:12]


def _docker(*args: str, input_path: Path | None = None) -> str:
    if input_path is None:
        stdin = subprocess.DEVNULL
        done = subprocess.run(
            ["docker", *args], stdin=stdin, capture_output=True, text=True, timeout=300, check=False
        )
    else:
        with input_path.open("rb") as stdin_file:
            done = subprocess.run(
                ["docker", *args],
                stdin=stdin_file,
                capture_output=True,
                text=True,
                timeout=300,
                check=False,
            )
    if done.returncode != 0:
        raise RuntimeError(f"docker {' '.join(args)} failed: {done.stderr.strip()}")
    return done.stdout.strip()


def _has_image(tag: str) -> bool:
    done = subprocess.run(
        ["docker", "image", "inspect", tag], capture_output=True, timeout=60, check=False
    )
    return done.returncode == 0


def base_image(workdir: Path) -> str:
    """The imported rootfs (entrypoint: serve.py in its normal mode), built once per
    fingerprint and then reused from the engine."""
    tag = f"greenshift-example/base:{_fingerprint()}"
    if not _has_image(tag):
        tarball = rootfs_tarball(workdir / "rootfs.tar")
        entrypoint = json.dumps([str(_interpreter()), PROGRAM])
        _docker(
            "import",
            "--change",
            f"ENTRYPOINT {entrypoint}",
            "--change",
            'CMD ["serve"]',
            "--change",
            "EXPOSE 8080",
            "-",
            tag,
            input_path=tarball,
        )
        tarball.unlink()
    return tag


def build(tag: str = DEFAULT_TAG, mode: str = "serve", workdir: Path | None = None) -> str:
    """Tag the example image as `tag`, its server in `mode`; returns the tag."""
    workdir = workdir or Path(os.environ.get("TMPDIR", "/tmp"))
    base = base_image(workdir)
    entrypoint = [str(_interpreter()), PROGRAM, "--mode", mode]
    dockerfile = f'FROM {base}\nENTRYPOINT {json.dumps(entrypoint)}\nCMD ["serve"]\n'
    context = workdir / f"context-{mode}-{os.getpid()}"
    context.mkdir(parents=True, exist_ok=True)
    (context / "Dockerfile").write_text(dockerfile)
    try:
        _docker("build", "-q", "-t", tag, str(context))
    finally:
        (context / "Dockerfile").unlink()
        context.rmdir()
    return tag


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tag", default=DEFAULT_TAG)
    parser.add_argument(
        "--mode", default="serve", choices=["serve", "fail", "exit", "noping", "stream"]
    )
    args = parser.parse_args()
    print(build(args.tag, args.mode))


if __name__ == "__main__":
    main()
