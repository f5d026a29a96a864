"""Publishing the SageMaker job code (jobs/) to the data bucket, as `sam deploy` cannot.

Training jobs take it as script mode's `sagemaker_submit_directory` (a sourcedir.tar.gz);
processing jobs take the same files as an S3 prefix mounted at /opt/ml/processing/input/code.
Both live under a content-addressed prefix, code/jobs/<sha256>/, and code/jobs/current.json
names the one new runs use, so every model version records exactly which code trained it."""

from __future__ import annotations

import hashlib
import io
import json
import tarfile
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
JOBS = ROOT / "jobs"
POINTER_KEY = "code/jobs/current.json"
SKIP_DIRS = {"__pycache__", ".pytest_cache", ".mypy_cache"}


def job_files(root: Path = JOBS) -> list[Path]:
    return sorted(
        p
        for p in root.rglob("*")
        if p.is_file() and not (SKIP_DIRS & set(p.relative_to(root).parts)) and p.suffix not in {".pyc", ".pyo"}
    )


def sourcedir_tarball(root: Path = JOBS) -> bytes:
    """A deterministic sourcedir.tar.gz: same files, same bytes."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz", format=tarfile.PAX_FORMAT) as archive:
        for path in job_files(root):
            data = path.read_bytes()
            info = tarfile.TarInfo(path.relative_to(root).as_posix())
            info.size, info.mtime, info.mode = len(data), 0, 0o644
            archive.addfile(info, io.BytesIO(data))
    return buffer.getvalue()


def code_digest(root: Path = JOBS) -> str:
    digest = hashlib.sha256()
    for path in job_files(root):
        digest.update(path.relative_to(root).as_posix().encode() + b"\0" + hashlib.sha256(path.read_bytes()).digest())
    return digest.hexdigest()


def publish(s3: Any, bucket: str, root: Path = JOBS) -> dict[str, str]:
    """Upload jobs/ under code/jobs/<sha256>/ and point code/jobs/current.json at it."""
    sha = code_digest(root)
    prefix = f"code/jobs/{sha}"
    for path in job_files(root):
        s3.put_object(Bucket=bucket, Key=f"{prefix}/files/{path.relative_to(root).as_posix()}", Body=path.read_bytes())
    s3.put_object(Bucket=bucket, Key=f"{prefix}/sourcedir.tar.gz", Body=sourcedir_tarball(root))
    pointer = {
        "code_version": sha,
        "files_uri": f"s3://{bucket}/{prefix}/files/",
        "sourcedir_uri": f"s3://{bucket}/{prefix}/sourcedir.tar.gz",
    }
    s3.put_object(Bucket=bucket, Key=POINTER_KEY, Body=json.dumps(pointer).encode(), ContentType="application/json")
    return pointer


def _publish_command(args: Any) -> int:
    import boto3

    pointer = publish(boto3.client("s3", region_name=args.region), args.bucket)
    print(json.dumps(pointer, indent=2))
    return 0


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "publish-code", help="upload jobs/ to the data bucket (after `sam deploy`) so new runs use it"
    )
    parser.add_argument("--bucket", required=True, help="the stack's DataBucketName output")
    parser.add_argument("--region", default=None)
    parser.set_defaults(func=_publish_command)
