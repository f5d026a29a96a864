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
from pathlib import Path
from typing import TYPE_CHECKING, Any

from lepton_ml.errors import JobFailure
from lepton_ml.failure import run_job
from lepton_ml.hyperparams import parse_hyperparameters
from lepton_ml.sm_env import TrainingEnvironment, collect_hyperparameters

if TYPE_CHECKING:
    from torch import nn

    from lepton_ml.model import ModelConfig
    from lepton_ml.preprocessing import Preprocessor

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


def train(env: TrainingEnvironment, argv: list[str]) -> None:
    hps = parse_hyperparameters(collect_hyperparameters(argv, env.input_config_dir))
    channels = _channels(env)
    print("hyperparameters: " + json.dumps(hps.as_strings(), sort_keys=True), flush=True)

    # Imports in the order the checks need them, so that bad hyperparameters, channels or data
    # fail the job before torch and scikit-learn load.
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

    import torch

    from lepton_ml import metrics, training
    from lepton_ml.model import ModelConfig, build_mlp

    device = training.resolve_device(hps.device)
    training.set_seeds(hps.seed, device)
    print(f"device: {device}; rows: train={len(x['train'])} validation={len(x['validation'])}; "
          f"task: {pre.task}; inputs: {pre.input_dim}", flush=True)  # fmt: skip
    config = ModelConfig(pre.task, pre.input_dim, hps.hidden_sizes, pre.output_dim, hps.dropout)
    net = build_mlp(config).to(device)
    optimizer = training.make_optimizer(hps.optimizer, net.parameters(), hps.learning_rate, hps.weight_decay,
                                        hps.momentum)  # fmt: skip
    target_dtype = torch.long if pre.task == "classification" else torch.float32
    tensors = {
        split: (torch.as_tensor(x[split], device=device), torch.as_tensor(y[split], dtype=target_dtype, device=device))
        for split in x
    }

    def validation_metrics(output: torch.Tensor) -> dict[str, float]:
        if pre.task == "classification":
            return metrics.quick_classification(y["validation"], output.argmax(dim=1).numpy())
        return metrics.regression_metrics(y_val_original, pre.decode_regression(output.squeeze(-1).numpy()))

    def on_epoch(result: training.EpochResult) -> dict[str, float]:
        figures = {f"validation:{k}": v for k, v in validation_metrics(result.validation_output).items()}
        metrics.emit({"epoch": result.epoch, "train:loss": result.train_loss, "validation:loss": result.validation_loss,
                      **figures, "train:samples_per_second": result.samples_per_second})  # fmt: skip
        return figures

    fit = training.fit(
        net, *tensors["train"], *tensors["validation"], task=pre.task, optimizer=optimizer, epochs=hps.epochs,
        batch_size=hps.batch_size, patience=hps.patience, seed=hps.seed, on_epoch=on_epoch,
    )  # fmt: skip
    best = fit.history[fit.best_epoch - 1]
    final = {k: v for k, v in best.items() if k in ("train:loss", "validation:loss") or k.startswith("validation:")}
    print(f"early stopping: kept the weights of epoch {fit.best_epoch} of {fit.epochs_run}", flush=True)
    # SageMaker records the last value of each metric: repeat the kept epoch's figures.
    metrics.emit(final)

    details = {
        "project": stats.project,
        "training_job_name": env.job_name,
        "hyperparameters": hps.as_strings(),
        "seed": hps.seed,
        "device": str(device),
        "metrics": final,
        "best_epoch": fit.best_epoch,
        "epochs_run": fit.epochs_run,
        "stopped_early": fit.stopped_early,
        "rows": {split: len(x[split]) for split in x},
    }
    write_archive(env.model_dir, net.cpu(), config, pre, details)
    env.output_data_dir.mkdir(parents=True, exist_ok=True)
    from lepton_ml import archive

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
