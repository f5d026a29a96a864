"""Compression of a float model into a child candidate: magnitude pruning and/or dynamic int8."""

from __future__ import annotations

import copy
import datetime as dt
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from torch import nn
from torch.nn.utils import prune

from lepton_ml import archive
from lepton_ml.errors import JobFailure
from lepton_ml.model import (
    ModelConfig,
    Quantization,
    count_nonzero_weights,
    linear_layers,
    quantize_dynamic_int8,
    save_model,
)
from lepton_ml.predictor import Predictor

Method = Literal["quantize", "prune", "prune+quantize"]
METHODS: tuple[Method, ...] = ("quantize", "prune", "prune+quantize")


@dataclass
class Compressed:
    model: nn.Module
    config: ModelConfig
    details: dict[str, Any]


def global_magnitude_prune(model: nn.Module, amount: float) -> float:
    """Zeroes the ``amount`` fraction of smallest-magnitude Linear weights across all layers, then
    makes the pruning permanent (prune.remove) so the zeros are in the state_dict. Returns the sparsity."""
    parameters = [(layer, "weight") for layer in linear_layers(model)]
    prune.global_unstructured(parameters, pruning_method=prune.L1Unstructured, amount=amount)
    for layer, name in parameters:
        prune.remove(layer, name)
    nonzero, total = count_nonzero_weights(model)
    return 1.0 - nonzero / total


def compress_model(parent: Predictor, method: Method, prune_amount: float) -> Compressed:
    if parent.config.quantization is not None:
        raise JobFailure("The parent model is already quantised; compress a float model.")
    if method not in METHODS:
        raise JobFailure(f"Invalid arguments: --method must be one of {', '.join(METHODS)}, got {method!r}.")
    model = copy.deepcopy(parent.model).cpu().eval()
    pruning: dict[str, Any] | None = parent.config.pruning
    details: dict[str, Any] = {"method": method}
    if "prune" in method:
        if not 0 < prune_amount < 1:
            raise JobFailure(f"Invalid arguments: --prune-amount must be in (0, 1), got {prune_amount}.")
        sparsity = global_magnitude_prune(model, prune_amount)
        pruning = {"method": "global_magnitude_l1", "amount": prune_amount, "sparsity": round(sparsity, 6)}
        details["pruning"] = pruning
    quantization: Quantization = None
    if "quantize" in method:
        model = quantize_dynamic_int8(model)
        quantization = "dynamic_int8"
        details["quantization"] = quantization
    return Compressed(model, parent.config.with_compression(quantization, pruning), details)


def write_child(
    parent: Predictor, child: Compressed, parent_archive_sha256: str, source_dir: Path, out_dir: Path
) -> Path:
    """Writes the child archive's files into ``out_dir``: same preprocessing, new model, lineage."""
    out_dir.mkdir(parents=True, exist_ok=True)
    save_model(child.model, child.config, out_dir / archive.MODEL_FILE)
    archive.write_json(out_dir / archive.CONFIG_FILE, child.config.to_json())
    shutil.copyfile(parent.model_dir / archive.PREPROCESSING_FILE, out_dir / archive.PREPROCESSING_FILE)
    archive.copy_serving_code(source_dir, out_dir)
    metadata = dict(parent.metadata)
    metadata.update(
        parent_archive_sha256=parent_archive_sha256,
        parent_content_sha256=parent.content_sha256,
        compression=child.details,
        code_sha256=archive.code_sha256(out_dir),
        created_at=dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
    )
    archive.write_json(out_dir / archive.METADATA_FILE, metadata)
    archive.write_checksums(out_dir)
    return out_dir


def record_child_metrics(child_dir: Path, test_metrics: dict[str, Any], parent_metrics: dict[str, Any]) -> None:
    """Puts the child's own test-split figures in its metadata.json (the parent's stay beside them)
    and re-writes checksums.json."""
    metadata = archive.read_json(child_dir, archive.METADATA_FILE)
    metadata["metrics"] = {f"test:{k}": v for k, v in test_metrics.items()}
    metadata["parent_metrics"] = parent_metrics
    archive.write_json(child_dir / archive.METADATA_FILE, metadata)
    archive.write_checksums(child_dir)
