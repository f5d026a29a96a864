"""The model archive (docs/contracts.md section 2): checksums, serving code, packing and safe unpacking.

Standard library only: the inference containers import it.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import shutil
import tarfile
import tempfile
from pathlib import Path
from typing import Any

from lepton_ml.errors import ArchiveError

MODEL_FILE = "model.pt"
CONFIG_FILE = "model_config.json"
PREPROCESSING_FILE = "preprocessing.json"
METADATA_FILE = "metadata.json"
CHECKSUMS_FILE = "checksums.json"
REQUIRED_FILES = (MODEL_FILE, CONFIG_FILE, PREPROCESSING_FILE, METADATA_FILE)
CODE_DIR = "code"
SERVING_MODULE = "inference.py"
PACKAGE = "lepton_ml"


def _ignored(relative: Path) -> bool:
    """Bytecode caches appear when Python imports code/ from an extracted archive: never part of it."""
    return "__pycache__" in relative.parts or relative.suffix == ".pyc"


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def archive_files(model_dir: Path) -> list[str]:
    """Every file of the archive (relative, posix), checksums.json and bytecode caches excluded."""
    files = []
    for path in model_dir.rglob("*"):
        relative = path.relative_to(model_dir)
        if path.is_file() and not _ignored(relative) and relative.as_posix() != CHECKSUMS_FILE:
            files.append(relative.as_posix())
    return sorted(files)


def write_json(path: Path, doc: Any) -> None:
    path.write_text(json.dumps(doc, indent=2, sort_keys=True) + "\n", encoding="utf-8")


def copy_serving_code(source_dir: Path, model_dir: Path) -> None:
    """code/inference.py and code/lepton_ml/ (Python sources only), so the archive serves itself."""
    code = model_dir / CODE_DIR
    if code.exists():
        shutil.rmtree(code)
    (code / PACKAGE).mkdir(parents=True)
    shutil.copyfile(source_dir / SERVING_MODULE, code / SERVING_MODULE)
    for src in sorted((source_dir / PACKAGE).rglob("*.py")):
        relative = src.relative_to(source_dir / PACKAGE)
        if _ignored(relative):
            continue
        dest = code / PACKAGE / relative
        dest.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(src, dest)


def code_sha256(model_dir: Path) -> str:
    """One digest over code/ (names and contents): the code version that serves this archive."""
    digest = hashlib.sha256()
    for name in archive_files(model_dir):
        if name.startswith(CODE_DIR + "/"):
            digest.update(name.encode() + b"\0" + bytes.fromhex(sha256_file(model_dir / name)))
    return digest.hexdigest()


def write_checksums(model_dir: Path) -> dict[str, str]:
    checksums = {name: sha256_file(model_dir / name) for name in archive_files(model_dir)}
    write_json(model_dir / CHECKSUMS_FILE, checksums)
    return checksums


def content_sha256(model_dir: Path) -> str:
    """A digest of the archive's content, independent of how it was tarred: sha256 of checksums.json."""
    return sha256_file(model_dir / CHECKSUMS_FILE)


def verify_model_dir(model_dir: Path) -> dict[str, str]:
    """Checks every file against checksums.json; refuses missing, altered or unlisted files."""
    checksums_path = model_dir / CHECKSUMS_FILE
    if not checksums_path.is_file():
        raise ArchiveError(f"The model archive at {model_dir} has no {CHECKSUMS_FILE}: refusing to use it.")
    try:
        checksums = json.loads(checksums_path.read_text(encoding="utf-8"))
    except ValueError as exc:
        raise ArchiveError(f"The model archive's {CHECKSUMS_FILE} is not valid JSON: {exc}") from exc
    if not isinstance(checksums, dict):
        raise ArchiveError(f"The model archive's {CHECKSUMS_FILE} must map file names to sha256 digests.")
    missing = [name for name in REQUIRED_FILES if name not in checksums]
    if missing:
        raise ArchiveError(f"The model archive's {CHECKSUMS_FILE} does not cover {missing}.")
    problems = []
    for name, expected in sorted(checksums.items()):
        path = model_dir / name
        if not path.is_file():
            problems.append(f"{name} is missing")
        elif sha256_file(path) != expected:
            problems.append(f"{name} does not match its sha256")
    unlisted = [name for name in archive_files(model_dir) if name not in checksums]
    problems += [f"{name} is not listed in {CHECKSUMS_FILE}" for name in unlisted]
    if problems:
        raise ArchiveError("The model archive failed its checksum verification: " + "; ".join(problems) + ".")
    return checksums


def read_json(model_dir: Path, name: str) -> Any:
    try:
        return json.loads((model_dir / name).read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise ArchiveError(f"The model archive's {name} cannot be read: {exc}") from exc


# -- model.tar.gz ---------------------------------------------------------------------------------
def pack(model_dir: Path, out_path: Path) -> str:
    """Writes a reproducible model.tar.gz (sorted names, fixed times and owners); returns its sha256."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for name in [*archive_files(model_dir), CHECKSUMS_FILE]:
            data = (model_dir / name).read_bytes()
            info = tarfile.TarInfo(name)
            info.size = len(data)
            info.mode = 0o644
            info.mtime = 0
            tar.addfile(info, io.BytesIO(data))
    out_path.parent.mkdir(parents=True, exist_ok=True)
    with out_path.open("wb") as raw, gzip.GzipFile(filename="", mode="wb", fileobj=raw, mtime=0) as gz:
        gz.write(buffer.getvalue())
    return sha256_file(out_path)


def extract(archive: Path, dest: Path) -> Path:
    """Unpacks model.tar.gz with the 'data' filter (no absolute paths, links out or devices)."""
    dest.mkdir(parents=True, exist_ok=True)
    try:
        with tarfile.open(archive, "r:*") as tar:
            tar.extractall(dest, filter="data")
    except (tarfile.TarError, OSError, EOFError) as exc:
        raise ArchiveError(f"{archive.name} is not a readable model archive: {exc}") from exc
    return dest


def locate(path: Path, workdir: Path | None = None) -> tuple[Path, Path | None]:
    """(extracted model dir, model.tar.gz or None) for a model.tar.gz, a folder holding exactly one
    .tar.gz (a processing input), or an already extracted archive folder. Tarballs are unpacked
    under ``workdir`` (a new temporary folder when None)."""

    def unpack(tarball: Path) -> Path:
        base = workdir if workdir is not None else Path(tempfile.mkdtemp(prefix="lepton-model-"))
        return extract(tarball, base / "model")

    if path.is_file():
        return unpack(path), path
    if not path.is_dir():
        raise ArchiveError(f"The model input {path} does not exist.")
    if (path / CHECKSUMS_FILE).is_file() or (path / CONFIG_FILE).is_file():
        return path, None
    tarballs = sorted(path.glob("*.tar.gz"))
    if len(tarballs) == 1:
        return unpack(tarballs[0]), tarballs[0]
    raise ArchiveError(
        f"The model input {path} must hold one model.tar.gz or an extracted archive; "
        f"found {sorted(p.name for p in path.iterdir())}."
    )
