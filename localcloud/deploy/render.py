"""Render the transformed CloudFormation of a SAM application (root and nested stacks), offline.

    python -m localcloud.deploy.render template.yaml --out .aws-sam/transformed

cfn-lint checks SAM templates before the transform; some errors (circular dependencies, E3004)
only exist after it, so `make lint` lints what this writes too."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from localcloud.deploy.template import PackagedTemplate, Packager, content_key, transform

PSEUDO = {"AWS::Region": "us-east-1", "AWS::AccountId": "123456789012", "AWS::Partition": "aws"}


def _placeholder(name: str, spec: dict[str, Any]) -> Any:
    if "Default" in spec:
        return spec["Default"]
    if spec.get("Type") == "Number":
        return "1"
    if name.endswith("Arn"):
        return f"arn:aws:lambda:us-east-1:123456789012:layer:{name}:1"
    return name.lower()


def render(path: Path) -> dict[str, dict[str, Any]]:
    """{relative template path: transformed template} for the template and every nested one."""
    packaged = Packager(lambda content, suffix: ("lepton-render-artifacts", content_key(content, suffix))).package(path)
    out: dict[str, dict[str, Any]] = {}
    base = path.resolve().parent

    def visit(item: PackagedTemplate) -> None:
        params = {k: _placeholder(k, v) for k, v in item.template.get("Parameters", {}).items()}
        out[str(item.source.relative_to(base))] = transform(item.template, {**params, **PSEUDO}, "us-east-1")
        for child in item.nested.values():
            visit(child)

    visit(packaged)
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("template", type=Path)
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    for name, template in render(args.template).items():
        target = args.out / (name.replace("/", "__").rsplit(".", 1)[0] + ".json")
        target.write_text(json.dumps(template, indent=1, sort_keys=True))
        print(target)
    return 0


if __name__ == "__main__":
    sys.exit(main())
