"""SageMaker training entry point: a tabular MLP for the dataset's task (docs/contracts.md section 2).

Inputs:  channels train, validation (parquet parts) and stats (stats.json) as SM_CHANNEL_<NAME>;
         hyperparameters as --name value and/or <SM_INPUT_CONFIG_DIR>/hyperparameters.json.
Outputs: the model archive files in SM_MODEL_DIR, history.json in SM_OUTPUT_DATA_DIR,
         `name=value` metric lines on stdout, <SM_OUTPUT_DIR>/failure and exit 1 on failure.
"""

from __future__ import annotations

import datetime as dt
import json
import platform
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, TextIO

from lepton_ml.errors import JobFailure
from lepton_ml.failure import run_job
from lepton_ml.hyperparams import TrainingHyperparameters, parse_hyperparameters
from lepton_ml.sm_env import TrainingEnvironment, collect_hyperparameters

if TYPE_CHECKING:  # imported where used, so that cheap checks fail before the heavy imports
    import numpy as np
    import torch
    from torch import nn

    from lepton_ml.data import DatasetStats
    from lepton_ml.model import ModelConfig
    from lepton_ml.preprocessing import Preprocessor
    from lepton_ml.training import FitResult

SOURCE_DIR = Path(__file__).resolve().parent
CHANNELS = ("train", "validation", "stats")


def _channels(env: TrainingEnvironment) -> dict[str, Path]:
    found: dict[str, Path] = {}
    problems = []
    for name in CHANNELS:
        try:
            found[name] = env.channel(name)
        except JobFailure as exc:
            problems.append(exc.reason)
    if problems:
        raise JobFailure(" ".join(problems))
    return found


@dataclass
class TrainingData:
    """The train and validation splits, encoded: what the training loop consumes."""

    stats: DatasetStats
    pre: Preprocessor
    x: dict[str, np.ndarray]
    y: dict[str, np.ndarray]
    y_val_original: np.ndarray  # regression targets in their own units (class indices otherwise)


@dataclass
class Prepared:
    config: ModelConfig
    net: nn.Module
    optimizer: torch.optim.Optimizer
    tensors: dict[str, tuple[torch.Tensor, torch.Tensor]]


def load_training_data(channels: dict[str, Path]) -> TrainingData:
    """stats.json and the parquet parts, checked and encoded (pandas and pyarrow; no torch yet)."""
    import numpy as np

    from lepton_ml.data import load_stats, read_split
    from lepton_ml.preprocessing import Preprocessor

    stats = load_stats(channels["stats"])
    pre = Preprocessor.from_stats(stats.model_dump())
    columns = [f.name for f in stats.features] + [stats.target]
    frames = {split: read_split(channels[split], split, columns, stats.target) for split in ("train", "validation")}
    x = {split: pre.encode_frame(frame) for split, frame in frames.items()}
    y = {split: pre.encode_target(frame[stats.target].tolist(), split) for split, frame in frames.items()}
    y_val_original = (
        frames["validation"][stats.target].to_numpy(dtype=np.float64) if pre.task == "regression" else y["validation"]
    )
    return TrainingData(stats, pre, x, y, y_val_original)


def prepare(hps: TrainingHyperparameters, data: TrainingData, device: torch.device) -> Prepared:
    """The model, its optimiser and the splits as tensors on ``device`` (seed torch first)."""
    import torch

    from lepton_ml import training
    from lepton_ml.model import ModelConfig, build_mlp

    pre = data.pre
    config = ModelConfig(pre.task, pre.input_dim, hps.hidden_sizes, pre.output_dim, hps.dropout)
    net = build_mlp(config).to(device)
    optimizer = training.make_optimizer(hps.optimizer, net.parameters(), hps.learning_rate, hps.weight_decay,
                                        hps.momentum)  # fmt: skip
    target_dtype = torch.long if pre.task == "classification" else torch.float32
    tensors = {
        split: (torch.as_tensor(data.x[split], device=device),
                torch.as_tensor(data.y[split], dtype=target_dtype, device=device))
        for split in data.x
    }  # fmt: skip
    return Prepared(config, net, optimizer, tensors)


def run_loop(
    hps: TrainingHyperparameters, data: TrainingData, prepared: Prepared, stream: TextIO | None = None
) -> FitResult:
    """The training loop as the entry point runs it: fit with per-epoch validation metrics printed."""
    from lepton_ml import metrics, training

    reporter = metrics.epoch_reporter(
        data.pre.task, data.y["validation"], data.y_val_original, data.pre.decode_regression, stream
    )
    return training.fit(
        prepared.net, *prepared.tensors["train"], *prepared.tensors["validation"], task=data.pre.task,
        optimizer=prepared.optimizer, epochs=hps.epochs, batch_size=hps.batch_size, patience=hps.patience,
        seed=hps.seed, on_epoch=reporter,
    )  # fmt: skip


def train(env: TrainingEnvironment, argv: list[str]) -> None:
    hps = parse_hyperparameters(collect_hyperparameters(argv, env.input_config_dir))
    channels = _channels(env)
    print("hyperparameters: " + json.dumps(hps.as_strings(), sort_keys=True), flush=True)
    # Bad hyperparameters, channels or data fail the job before torch and scikit-learn load.
    data = load_training_data(channels)

    from lepton_ml import archive, metrics, training

    device = training.resolve_device(hps.device)
    training.set_seeds(hps.seed, device)
    print(f"device: {device}; rows: train={len(data.x['train'])} validation={len(data.x['validation'])}; "
          f"task: {data.pre.task}; inputs: {data.pre.input_dim}", flush=True)  # fmt: skip
    prepared = prepare(hps, data, device)
    fit = run_loop(hps, data, prepared)
    best = fit.history[fit.best_epoch - 1]
    final = {k: v for k, v in best.items() if k in ("train:loss", "validation:loss") or k.startswith("validation:")}
    print(f"early stopping: kept the weights of epoch {fit.best_epoch} of {fit.epochs_run}", flush=True)
    # SageMaker records the last value of each metric: repeat the kept epoch's figures.
    metrics.emit(final)

    details = {
        "project": data.stats.project,
        "training_job_name": env.job_name,
        "hyperparameters": hps.as_strings(),
        "seed": hps.seed,
        "device": str(device),
        "metrics": final,
        "best_epoch": fit.best_epoch,
        "epochs_run": fit.epochs_run,
        "stopped_early": fit.stopped_early,
        "rows": {split: len(data.x[split]) for split in data.x},
    }
    write_archive(env.model_dir, prepared.net.cpu(), prepared.config, data.pre, details)
    env.output_data_dir.mkdir(parents=True, exist_ok=True)
    archive.write_json(env.output_data_dir / "history.json", fit.history)
    print(f"model archive written to {env.model_dir}", flush=True)


def write_archive(
    model_dir: Path, net: nn.Module, config: ModelConfig, pre: Preprocessor, details: dict[str, Any]
) -> None:
    """model.pt, model_config.json, preprocessing.json, code/, metadata.json, then checksums.json."""
    import torch

    from lepton_ml import archive
    from lepton_ml.model import save_model

    model_dir.mkdir(parents=True, exist_ok=True)
    save_model(net, config, model_dir / archive.MODEL_FILE)
    archive.write_json(model_dir / archive.CONFIG_FILE, config.to_json())
    archive.write_json(model_dir / archive.PREPROCESSING_FILE, pre.to_json())
    archive.copy_serving_code(SOURCE_DIR, model_dir)
    metadata = {
        "schema_version": 1,
        "task": pre.task,
        "dataset_id": pre.dataset_id,
        **details,
        "torch_version": torch.__version__,
        "python_version": platform.python_version(),
        "parent_archive_sha256": None,
        "compression": None,
        "code_sha256": archive.code_sha256(model_dir),
        "created_at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
    }
    archive.write_json(model_dir / archive.METADATA_FILE, metadata)
    archive.write_checksums(model_dir)


def main(argv: list[str] | None = None) -> int:
    env = TrainingEnvironment.from_environ()
    return run_job(lambda: train(env, sys.argv[1:] if argv is None else argv), env.failure_file)


if __name__ == "__main__":
    sys.exit(main())
