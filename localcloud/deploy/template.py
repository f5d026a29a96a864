"""Loading, packaging and transforming SAM templates offline.

Packaging does what `sam package` does: every local path a template names (a function's CodeUri,
a layer's ContentUri, a state machine's DefinitionUri, a nested application's Location) is
uploaded to the artifacts bucket under a content hash and the template is rewritten to point at
it. The SAM transform is aws-sam-translator's own, run offline with its bundled managed-policy
map."""

from __future__ import annotations

import copy
import hashlib
import io
import json
import os
import zipfile
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any

from localcloud.deploy.errors import TemplateError, UnsupportedError

SAM_TRANSFORM = "AWS::Serverless-2016-10-31"
EXCLUDED_DIRS = {"__pycache__", ".pytest_cache", ".mypy_cache", ".ruff_cache", "tests"}
EXCLUDED_SUFFIXES = (".pyc", ".pyo")
ZIP_EPOCH = (1980, 1, 1, 0, 0, 0)

Uploader = Callable[[bytes, str], tuple[str, str]]  # (content, suffix) -> (bucket, key)


def load(path: Path) -> dict[str, Any]:
    """A template file (YAML with CloudFormation short tags, or JSON) as plain data."""
    from cfnlint.decode import cfn_yaml

    try:
        text = path.read_text()
    except OSError as exc:
        raise TemplateError(f"cannot read template {path}: {exc}") from exc
    # round-trip through JSON to drop cfn-lint's node classes (line marks)
    return json.loads(json.dumps(cfn_yaml.loads(text, str(path))))


def zip_directory(root: Path, prefix: str = "") -> bytes:
    """A deterministic zip of a folder: same content, same bytes, same CodeSha256."""
    if not root.is_dir():
        raise TemplateError(f"{root} is not a folder")
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for dirpath, dirnames, filenames in os.walk(root):
            dirnames[:] = sorted(d for d in dirnames if d not in EXCLUDED_DIRS and not d.startswith("."))
            for name in sorted(filenames):
                if name.endswith(EXCLUDED_SUFFIXES):
                    continue
                full = Path(dirpath) / name
                info = zipfile.ZipInfo(prefix + full.relative_to(root).as_posix(), ZIP_EPOCH)
                info.external_attr = 0o644 << 16
                info.compress_type = zipfile.ZIP_DEFLATED
                archive.writestr(info, full.read_bytes())
    return buffer.getvalue()


@cache
def managed_policy_map() -> dict[str, str]:
    import samtranslator

    path = Path(samtranslator.__file__).parent / "internal" / "data" / "aws_managed_policies.json"
    return dict(json.loads(path.read_text())["aws"])


def transform(template: dict[str, Any], parameters: dict[str, Any], region: str) -> dict[str, Any]:
    """Apply the SAM transform (when the template declares it) exactly as CloudFormation would."""
    transforms = template.get("Transform", [])
    transforms = transforms if isinstance(transforms, list) else [transforms]
    unknown = [t for t in transforms if t != SAM_TRANSFORM]
    if unknown:
        raise UnsupportedError(f"transforms {unknown} are not available locally")
    if not transforms:
        return copy.deepcopy(template)
    import logging

    import boto3
    from samtranslator.model.exceptions import InvalidDocumentException
    from samtranslator.parser.parser import Parser
    from samtranslator.translator.translator import Translator

    logging.getLogger("samtranslator.metrics.metrics").setLevel(logging.ERROR)  # it nags about its own metrics
    translator = Translator(None, Parser(), boto_session=boto3.Session(region_name=region))
    try:
        return translator.translate(
            copy.deepcopy(template), parameter_values=dict(parameters), get_managed_policy_map=managed_policy_map
        )
    except InvalidDocumentException as exc:
        causes = "; ".join(str(c) for c in exc.causes)
        raise TemplateError(f"SAM transform failed: {causes}") from exc


@dataclass
class PackagedTemplate:
    """A template whose local paths now point at uploaded artifacts."""

    source: Path
    template: dict[str, Any]
    nested: dict[str, PackagedTemplate] = field(default_factory=dict)  # TemplateURL -> packaged child
    artifacts: dict[str, str] = field(default_factory=dict)  # "Logical.Property" -> s3://bucket/key


class Packager:
    def __init__(self, upload: Uploader) -> None:
        self._upload = upload

    def package(self, path: Path) -> PackagedTemplate:
        path = path.resolve()
        template = load(path)
        packaged = PackagedTemplate(source=path, template=template)
        base = path.parent
        for logical, resource in template.get("Resources", {}).items():
            kind = resource.get("Type")
            props = resource.setdefault("Properties", {})
            if kind == "AWS::Serverless::Function":
                self._function(packaged, base, logical, props, template)
            elif kind == "AWS::Serverless::LayerVersion":
                self._layer(packaged, base, logical, resource)
            elif kind == "AWS::Serverless::StateMachine" and isinstance(props.get("DefinitionUri"), str):
                uri = props["DefinitionUri"]
                if not uri.startswith("s3://"):
                    bucket, key = self._upload(self._read(base / uri), ".asl.json")
                    props["DefinitionUri"] = {"Bucket": bucket, "Key": key}
                    packaged.artifacts[f"{logical}.DefinitionUri"] = f"s3://{bucket}/{key}"
            elif kind == "AWS::Serverless::Application" and isinstance(props.get("Location"), str):
                props["Location"] = self._nested(packaged, base, logical, props["Location"])
            elif kind == "AWS::CloudFormation::Stack" and isinstance(props.get("TemplateURL"), str):
                props["TemplateURL"] = self._nested(packaged, base, logical, props["TemplateURL"])
        return packaged

    @staticmethod
    def _read(path: Path) -> bytes:
        try:
            return path.read_bytes()
        except OSError as exc:
            raise TemplateError(f"cannot read {path}: {exc}") from exc

    def _function(
        self, packaged: PackagedTemplate, base: Path, logical: str, props: dict[str, Any], template: dict[str, Any]
    ) -> None:
        if props.get("PackageType") == "Image" or "ImageUri" in props:
            raise UnsupportedError(f"{logical}: container-image functions are not runnable locally")
        if "InlineCode" in props:
            return
        code_uri = props.get("CodeUri", template.get("Globals", {}).get("Function", {}).get("CodeUri"))
        if code_uri is None:
            raise TemplateError(f"{logical}: a function needs CodeUri or InlineCode")
        if isinstance(code_uri, str) and not code_uri.startswith("s3://"):
            bucket, key = self._upload(zip_directory(base / code_uri), ".zip")
            props["CodeUri"] = f"s3://{bucket}/{key}"
            packaged.artifacts[f"{logical}.CodeUri"] = props["CodeUri"]

    def _layer(self, packaged: PackagedTemplate, base: Path, logical: str, resource: dict[str, Any]) -> None:
        props = resource["Properties"]
        content = props.get("ContentUri")
        if isinstance(content, str) and not content.startswith("s3://"):
            build = str(resource.get("Metadata", {}).get("BuildMethod", ""))
            # `sam build` with a python BuildMethod puts the folder's contents under python/
            prefix = "python/" if build.startswith("python") else ""
            bucket, key = self._upload(zip_directory(base / content, prefix), ".zip")
            props["ContentUri"] = f"s3://{bucket}/{key}"
            packaged.artifacts[f"{logical}.ContentUri"] = props["ContentUri"]

    def _nested(self, packaged: PackagedTemplate, base: Path, logical: str, location: str) -> str:
        if location.startswith(("https://", "http://", "s3://")):
            raise UnsupportedError(f"{logical}: nested templates must be local files, got {location}")
        child = self.package(base / location)
        bucket, key = self._upload(json.dumps(child.template, sort_keys=True).encode(), ".template.json")
        url = f"https://{bucket}.s3.amazonaws.com/{key}"
        packaged.nested[url] = child
        packaged.artifacts[f"{logical}.Location"] = url
        return url


def content_key(content: bytes, suffix: str) -> str:
    return f"artifacts/{hashlib.sha256(content).hexdigest()}{suffix}"
