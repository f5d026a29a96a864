"""`diff A B`: what changed between two model versions (pure)."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict

from lepton.registry.models import ModelVersion


class Out(BaseModel):
    model_config = ConfigDict(frozen=True)


class ValueChange(Out):
    a: Any
    b: Any


class MetricDelta(Out):
    a: float | None
    b: float | None
    delta: float | None = None
    relative: float | None = None


class HyperparameterDiff(Out):
    added: dict[str, Any]
    removed: dict[str, Any]
    changed: dict[str, ValueChange]
    unchanged: dict[str, Any]


class DatasetDiff(Out):
    a: str
    b: str
    same: bool


class LineageDiff(Out):
    a_branch: str
    b_branch: str
    a_parent: int | None
    b_parent: int | None
    common_ancestor: int | None
    a_is_ancestor_of_b: bool
    b_is_ancestor_of_a: bool
    code_version: ValueChange | None
    training_job: ValueChange
    artifact_sha256: ValueChange | None


class VersionDiff(Out):
    project: str
    a: int
    b: int
    status: ValueChange
    hyperparameters: HyperparameterDiff
    metrics: dict[str, MetricDelta]
    dataset: DatasetDiff
    lineage: LineageDiff


def _change(a: Any, b: Any) -> ValueChange | None:
    return None if a == b else ValueChange(a=a, b=b)


def diff_versions(a: ModelVersion, b: ModelVersion) -> VersionDiff:
    ha, hb = a.hyperparameters, b.hyperparameters
    hyper = HyperparameterDiff(
        added={k: hb[k] for k in sorted(hb.keys() - ha.keys())},
        removed={k: ha[k] for k in sorted(ha.keys() - hb.keys())},
        changed={
            k: ValueChange(a=ha[k], b=hb[k])
            for k in sorted(ha.keys() & hb.keys())
            if ha[k] != hb[k] or type(ha[k]) is not type(hb[k])
        },
        unchanged={k: ha[k] for k in sorted(ha.keys() & hb.keys()) if ha[k] == hb[k] and type(ha[k]) is type(hb[k])},
    )
    metrics: dict[str, MetricDelta] = {}
    for name in sorted(a.metrics.keys() | b.metrics.keys()):
        ma, mb = a.metrics.get(name), b.metrics.get(name)
        delta = relative = None
        if ma is not None and mb is not None:
            delta = mb - ma
            relative = delta / abs(ma) if ma != 0 else None
        metrics[name] = MetricDelta(a=ma, b=mb, delta=delta, relative=relative)
    line_a = [a.number, *a.ancestry]
    line_b = [b.number, *b.ancestry]
    in_b = set(line_b)
    common = next((n for n in line_a if n in in_b), None)
    return VersionDiff(
        project=a.project,
        a=a.number,
        b=b.number,
        status=ValueChange(a=a.status, b=b.status),
        hyperparameters=hyper,
        metrics=metrics,
        dataset=DatasetDiff(a=a.dataset_id, b=b.dataset_id, same=a.dataset_id == b.dataset_id),
        lineage=LineageDiff(
            a_branch=a.branch,
            b_branch=b.branch,
            a_parent=a.parent_version,
            b_parent=b.parent_version,
            common_ancestor=common,
            a_is_ancestor_of_b=a.number in b.ancestry,
            b_is_ancestor_of_a=b.number in a.ancestry,
            code_version=_change(a.code_version, b.code_version),
            training_job=ValueChange(a=a.training_job, b=b.training_job),
            artifact_sha256=_change(a.artifact_sha256, b.artifact_sha256),
        ),
    )
