"""lepton_ml in process: hyperparameters, environment, preprocessing, model storage, training loop,
metrics and the archive."""

from __future__ import annotations

import io
import json
import math
import re
import tarfile
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

from lepton_ml import archive, training
from lepton_ml.compression import global_magnitude_prune
from lepton_ml.errors import ArchiveError, JobFailure, RequestError
from lepton_ml.hyperparams import TrainingHyperparameters, parse_hyperparameters
from lepton_ml.metrics import METRIC_VALUE_REGEX, classification_report, emit, format_value
from lepton_ml.model import ModelConfig, build_mlp, load_model, quantize_dynamic_int8, save_model
from lepton_ml.preprocessing import Preprocessor
from lepton_ml.sm_env import TrainingEnvironment, collect_hyperparameters, parse_cli_hyperparameters

STATS: dict[str, Any] = {
    "schema_version": 1,
    "dataset_id": "ds-00000000000000000000",
    "task": "classification",
    "target": "label",
    "features": [
        {"name": "x", "kind": "numeric", "mean": 10.0, "std": 2.0},
        {"name": "flat", "kind": "numeric", "mean": 3.0, "std": 0.0},
        {"name": "colour", "kind": "categorical", "categories": {"red": 0.6, "white": 0.4}},
    ],
    "target_stats": {"kind": "categorical", "classes": ["no", "yes"], "counts": {"no": 3, "yes": 2}},
}


# -- hyperparameters and the environment ---------------------------------------------------------
def test_hyperparameters_default_and_coerce_from_strings() -> None:
    hps = parse_hyperparameters({"epochs": "5", "learning_rate": "1e-2", "hidden_sizes": "128, 64,32", "device": "cpu"})
    assert hps.epochs == 5 and hps.learning_rate == 0.01 and hps.hidden_sizes == (128, 64, 32)
    assert hps.optimizer == "adam" and hps.patience == TrainingHyperparameters().patience
    assert parse_hyperparameters(hps.as_strings()) == hps


@pytest.mark.parametrize(
    ("raw", "says"),
    [
        ({"batch_size": "0"}, "hyperparameter 'batch_size' = '0': Input should be greater than or equal to 1"),
        ({"optimizer": "rmsprop"}, "hyperparameter 'optimizer' = 'rmsprop'"),
        ({"hidden_sizes": ""}, "hyperparameter 'hidden_sizes' = ''"),
        ({"hidden_sizes": "64,0"}, "every layer width must be between 1 and 4096"),
        ({"dropout": "1"}, "hyperparameter 'dropout' = '1': Input should be less than 1"),
        ({"seed": "abc"}, "hyperparameter 'seed' = 'abc'"),
        ({"epoch": "3"}, "unknown hyperparameter 'epoch' (known: epochs, batch_size"),
    ],
)
def test_bad_hyperparameters_are_named(raw: dict[str, str], says: str) -> None:
    with pytest.raises(JobFailure) as caught:
        parse_hyperparameters(raw)
    assert says in caught.value.reason


def test_every_bad_hyperparameter_is_reported_at_once() -> None:
    with pytest.raises(JobFailure) as caught:
        parse_hyperparameters({"epochs": "-1", "learning_rate": "0"})
    assert "'epochs'" in caught.value.reason and "'learning_rate'" in caught.value.reason


def test_command_line_forms() -> None:
    assert parse_cli_hyperparameters(["--epochs", "3", "--hidden-sizes=8,4"]) == {"epochs": "3", "hidden_sizes": "8,4"}
    with pytest.raises(JobFailure, match="'epochs' has no value"):
        parse_cli_hyperparameters(["--epochs"])
    with pytest.raises(JobFailure, match="Unexpected command-line argument 'stray'"):
        parse_cli_hyperparameters(["stray"])


def test_hyperparameters_json_is_decoded_and_overridden(tmp_path: Path) -> None:
    (tmp_path / "hyperparameters.json").write_text(
        json.dumps(
            {
                "epochs": "10",
                "optimizer": '"sgd"',
                "hidden_sizes": "32,16",
                "sagemaker_region": '"eu-west-1"',
                "_tuning_objective_metric": '"validation:loss"',
            }
        )
    )
    merged = collect_hyperparameters(["--epochs", "4"], tmp_path)
    assert merged == {"epochs": "4", "optimizer": "sgd", "hidden_sizes": "32,16"}
    (tmp_path / "hyperparameters.json").write_text("[1, 2]")
    with pytest.raises(JobFailure, match="JSON object"):
        collect_hyperparameters([], tmp_path)


def test_environment_is_relocatable(tmp_path: Path) -> None:
    env = TrainingEnvironment.from_environ(
        {
            "SM_MODEL_DIR": str(tmp_path / "m"),
            "SM_OUTPUT_DIR": str(tmp_path / "o"),
            "SM_CHANNEL_TRAIN": str(tmp_path),
            "SM_TRAINING_ENV": json.dumps({"job_name": "from-training-env"}),
        }
    )
    assert env.model_dir == tmp_path / "m" and env.failure_file == tmp_path / "o" / "failure"
    assert env.output_data_dir == tmp_path / "o" / "data"
    assert env.channel("train") == tmp_path and env.job_name == "from-training-env"
    with pytest.raises(JobFailure, match="Missing input channel 'stats': SM_CHANNEL_STATS is not set"):
        env.channel("stats")
    defaults = TrainingEnvironment.from_environ({})
    assert defaults.model_dir == Path("/opt/ml/model") and defaults.failure_file == Path("/opt/ml/output/failure")


# -- preprocessing -----------------------------------------------------------------------------------
def test_standardisation_one_hot_and_nulls() -> None:
    pre = Preprocessor.from_stats(STATS)
    assert pre.input_dim == 4 and pre.output_dim == 2
    x = pre.encode_columns({"x": [12.0, math.nan], "flat": [3.0, 5.0], "colour": ["white", None]})
    assert x.dtype == np.float32
    # x standardised; a constant feature divides by 1; nulls take the mean; unseen/null category -> zeros
    assert x.tolist() == [[1.0, 0.0, 0.0, 1.0], [0.0, 2.0, 0.0, 0.0]]
    unseen = pre.encode_columns({"x": [10.0], "flat": [3.0], "colour": ["green"]})
    assert unseen.tolist() == [[0.0, 0.0, 0.0, 0.0]]
    assert pre.numeric_mask().tolist() == [True, True, False, False]
    assert Preprocessor.from_json(json.loads(json.dumps(pre.to_json()))) == pre


def test_frames_from_parquet_dtypes() -> None:
    import pandas as pd

    frame = pd.DataFrame(
        {"x": pd.Series([12.0, None], dtype="float64"), "flat": [3.0, 3.0],
         "colour": pd.Series(["red", None], dtype="string"), "label": ["yes", "no"]}
    )  # fmt: skip
    assert Preprocessor.from_stats(STATS).encode_frame(frame).tolist() == [[1.0, 0.0, 1.0, 0.0], [0.0, 0.0, 0.0, 0.0]]


def test_targets() -> None:
    pre = Preprocessor.from_stats(STATS)
    assert pre.encode_target(["yes", "no", "yes"], "train").tolist() == [1, 0, 1]
    with pytest.raises(JobFailure, match=r"values 'maybe' that are not among the classes"):
        pre.encode_target(["yes", "maybe"], "validation")
    reg = Preprocessor.from_stats(
        {**STATS, "task": "regression", "target_stats": {"kind": "numeric", "mean": 100.0, "std": 20.0}}
    )
    z = reg.encode_target([120.0, 60.0], "train")
    assert z.tolist() == [1.0, -2.0]
    assert reg.decode_regression(z).tolist() == [120.0, 60.0]
    with pytest.raises(JobFailure, match="non-finite target"):
        reg.encode_target([1.0, math.nan], "train")


def test_request_rows_by_position_or_by_name() -> None:
    pre = Preprocessor.from_stats(STATS)
    by_position = pre.encode_request([[12, "3.0", "red"], [None, 3, None]])
    by_name = pre.encode_request([{"colour": "red", "flat": 3.0, "x": 12}, {"x": None, "flat": 3, "colour": None}])
    assert by_position.tolist() == by_name.tolist()


@pytest.mark.parametrize(
    ("rows", "says", "field"),
    [
        ([[1, 2]], "row 0 has 2 values; the model expects 3 features in this order: x, flat, colour", None),
        ([{"x": 1, "flat": 2, "colour": "red", "size": 3}], "unknown feature 'size' in row 0", "size"),
        ([{"x": 1, "colour": "red"}], "missing feature 'flat' in row 0", "flat"),
        ([[1, 2, "red"], [1, "two", "red"]], "non-numeric value 'two' for numeric feature 'flat' in row 1", "flat"),
        ([[True, 2, "red"]], "non-numeric value True for numeric feature 'x' in row 0", "x"),
        ([[float("inf"), 2, "red"]], "non-finite value inf for numeric feature 'x'", "x"),
        ([[1, 2, "red"], [1e300, 2, "red"]], "value 1e+300 for numeric feature 'x' in row 1 is out of range", "x"),
        ([[1, 2, ["red"]]], "categorical feature 'colour' in row 0 must be a string", "colour"),
        ([], "no rows", None),
        ([5], "row 0 must be a list", None),
    ],
)
def test_bad_request_rows(rows: list[Any], says: str, field: str | None) -> None:
    with pytest.raises(RequestError) as caught:
        Preprocessor.from_stats(STATS).encode_request(rows)
    assert says in caught.value.detail and caught.value.status_code == 400
    assert caught.value.field == field


# -- device and seeds ----------------------------------------------------------------------------------
def test_device_resolution_is_explicit() -> None:
    assert training.resolve_device("auto", cuda_available=False) == torch.device("cpu")
    assert training.resolve_device("auto", cuda_available=True) == torch.device("cuda")
    assert training.resolve_device("cpu", cuda_available=True) == torch.device("cpu")
    with pytest.raises(JobFailure, match="'device' = 'cuda' but no CUDA device"):
        training.resolve_device("cuda", cuda_available=False)


def _toy(seed: int = 0) -> tuple[torch.Tensor, ...]:
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(300, 6, generator=g)
    y = (x[:, 0] + 0.5 * x[:, 1] > 0).long()
    return x[:200], y[:200], x[200:], y[200:]


def _fit(seed: int, **kwargs: Any) -> tuple[torch.nn.Module, training.FitResult]:
    training.set_seeds(seed, torch.device("cpu"))
    config = ModelConfig("classification", 6, (16,), 2, dropout=0.1)
    model = build_mlp(config)
    optimizer = training.make_optimizer(kwargs.pop("optimizer", "adam"), model.parameters(),
                                        kwargs.pop("lr", 0.01), 0.0, 0.9)  # fmt: skip
    options: dict[str, Any] = {"epochs": 30, "batch_size": 32, "patience": 5, **kwargs}
    result = training.fit(model, *_toy(), task="classification", optimizer=optimizer, seed=seed, **options)
    return model, result


def test_training_is_deterministic_for_a_seed() -> None:
    a, _ = _fit(3)
    b, _ = _fit(3)
    c, _ = _fit(4)
    assert all(torch.equal(p, q) for p, q in zip(a.state_dict().values(), b.state_dict().values(), strict=True))
    assert not all(torch.equal(p, q) for p, q in zip(a.state_dict().values(), c.state_dict().values(), strict=True))


def test_early_stopping_keeps_the_best_weights() -> None:
    model, result = _fit(1, epochs=200, patience=3, lr=0.05)
    losses = [row["validation:loss"] for row in result.history]
    assert result.stopped_early and result.epochs_run < 200
    assert result.best_epoch == int(np.argmin(losses)) + 1
    assert result.epochs_run == result.best_epoch + 3
    x_val, y_val = _toy()[2:]
    kept = training.loss_function("classification")(training.predict_batches(model, x_val), y_val).item()
    assert kept == pytest.approx(min(losses), rel=1e-6)


def test_divergence_is_a_job_failure() -> None:
    with pytest.raises(training.TrainingDiverged, match="Training diverged"):
        _fit(0, optimizer="sgd", lr=1e9, epochs=5)


# -- model storage -------------------------------------------------------------------------------------
def test_pruned_model_is_stored_sparse_and_reloads_exactly(tmp_path: Path) -> None:
    config = ModelConfig("classification", 20, (64, 32), 3)
    model = build_mlp(config)
    sparsity = global_magnitude_prune(model, 0.8)
    assert sparsity == pytest.approx(0.8, abs=0.001)
    assert not any(hasattr(m, "weight_orig") for m in model.modules())  # prune.remove made it permanent
    pruned = config.with_compression(None, {"method": "global_magnitude_l1", "amount": 0.8})
    save_model(model, pruned, tmp_path / "sparse.pt")
    save_model(model, config, tmp_path / "dense.pt")
    assert (tmp_path / "sparse.pt").stat().st_size < 0.7 * (tmp_path / "dense.pt").stat().st_size
    reloaded = load_model(pruned, tmp_path / "sparse.pt")
    restored = reloaded.state_dict()
    assert restored.keys() == model.state_dict().keys()
    for name, tensor in model.state_dict().items():
        assert torch.equal(tensor, restored[name]), name


def test_int8_model_round_trips(tmp_path: Path) -> None:
    config = ModelConfig("regression", 10, (32,), 1)
    model = build_mlp(config).eval()
    quantized = quantize_dynamic_int8(model)
    int8 = config.with_compression("dynamic_int8", None)
    save_model(quantized, int8, tmp_path / "model.pt")
    reloaded = load_model(int8, tmp_path / "model.pt")
    x = torch.randn(8, 10)
    assert torch.equal(quantized(x), reloaded(x))
    assert torch.allclose(model(x), reloaded(x), atol=0.05)


# -- metrics -------------------------------------------------------------------------------------------
def test_metric_lines_match_the_metric_definitions(metric_definitions: list[dict[str, str]]) -> None:
    names = {d["Name"] for d in metric_definitions}
    assert names == {"epoch", "train:loss", "validation:loss", "validation:accuracy", "validation:f1_macro",
                     "validation:rmse", "validation:mae", "validation:r2", "train:samples_per_second"}  # fmt: skip
    out = io.StringIO()
    values = {"epoch": 3, "validation:loss": 1.25e-7, "validation:accuracy": 0.95614, "train:loss": float("nan"),
              "validation:r2": -0.5}  # fmt: skip
    emit(values, stream=out)
    lines = out.getvalue().splitlines()
    assert lines[0] == "epoch=3"
    for definition in metric_definitions:
        assert len(definition["Regex"]) <= 500  # SageMaker's limit
        for line in lines:
            match = re.search(definition["Regex"], line)
            if definition["Name"] in values:
                expected = values[definition["Name"]]
                if line.startswith(definition["Name"] + "="):
                    assert match is not None
                    got = float(match.group(1))
                    assert (math.isnan(got) and math.isnan(expected)) or got == pytest.approx(expected, rel=1e-5)
            if match:
                assert line.startswith(definition["Name"] + "="), (definition["Name"], line)
    assert format_value(float("inf")) == "inf" and re.fullmatch(METRIC_VALUE_REGEX, "1.5e-07")


def test_classification_report_multiclass() -> None:
    y = np.array([0, 1, 2, 2, 1, 0])
    proba = np.array([[0.8, 0.1, 0.1], [0.2, 0.7, 0.1], [0.1, 0.2, 0.7], [0.3, 0.4, 0.3], [0.1, 0.8, 0.1],
                      [0.5, 0.4, 0.1]])  # fmt: skip
    report = classification_report(y, proba, ["a", "b", "c"])
    m = report["metrics"]
    assert m["accuracy"] == pytest.approx(5 / 6)
    assert report["confusion_matrix"] == {"labels": ["a", "b", "c"], "matrix": [[2, 0, 0], [0, 2, 0], [0, 1, 1]]}
    assert report["per_class"]["c"] == {"precision": 1.0, "recall": 0.5, "f1": pytest.approx(2 / 3), "support": 2,
                                        "roc_auc": 1.0}  # fmt: skip
    assert 0.9 < m["roc_auc"] <= 1.0 and m["f1_weighted"] == pytest.approx(m["f1_macro"])
    # a class absent from the test split: one-vs-rest over the classes present, said so
    partial = classification_report(np.array([0, 1, 0, 1]), proba[:4], ["a", "b", "c"])
    assert partial["metrics"]["roc_auc"] is not None and "present" in partial["roc_auc_note"]
    assert partial["per_class"]["c"]["roc_auc"] is None


# -- archive -------------------------------------------------------------------------------------------
def _archive(tmp_path: Path) -> Path:
    model_dir = tmp_path / "model"
    model_dir.mkdir()
    config = ModelConfig("classification", 4, (8,), 2)
    save_model(build_mlp(config), config, model_dir / "model.pt")
    archive.write_json(model_dir / "model_config.json", config.to_json())
    archive.write_json(model_dir / "preprocessing.json", Preprocessor.from_stats(STATS).to_json())
    archive.write_json(model_dir / "metadata.json", {"task": "classification"})
    archive.copy_serving_code(Path(__file__).resolve().parents[3] / "jobs", model_dir)
    archive.write_checksums(model_dir)
    return model_dir


def test_archive_verification(tmp_path: Path) -> None:
    model_dir = _archive(tmp_path)
    checksums = archive.verify_model_dir(model_dir)
    assert "code/inference.py" in checksums and "code/lepton_ml/archive.py" in checksums
    (model_dir / "code" / "lepton_ml" / "__pycache__").mkdir()
    (model_dir / "code" / "lepton_ml" / "__pycache__" / "x.cpython-311.pyc").write_bytes(b"cache")
    archive.verify_model_dir(model_dir)  # bytecode caches appear when code/ is imported: ignored
    (model_dir / "notes.txt").write_text("unlisted")
    with pytest.raises(ArchiveError, match=r"notes\.txt is not listed"):
        archive.verify_model_dir(model_dir)
    (model_dir / "notes.txt").unlink()
    (model_dir / "metadata.json").write_text("{}")
    with pytest.raises(ArchiveError, match=r"metadata\.json does not match its sha256"):
        archive.verify_model_dir(model_dir)
    (model_dir / "metadata.json").unlink()
    with pytest.raises(ArchiveError, match=r"metadata\.json is missing"):
        archive.verify_model_dir(model_dir)


def test_pack_is_reproducible_and_round_trips(tmp_path: Path) -> None:
    model_dir = _archive(tmp_path)
    first = archive.pack(model_dir, tmp_path / "a" / "model.tar.gz")
    second = archive.pack(model_dir, tmp_path / "b" / "model.tar.gz")
    assert first == second
    extracted, tarball = archive.locate(tmp_path / "a", tmp_path / "work")
    assert tarball == tmp_path / "a" / "model.tar.gz"
    assert archive.verify_model_dir(extracted) == archive.verify_model_dir(model_dir)
    assert archive.content_sha256(extracted) == archive.content_sha256(model_dir)


def test_extraction_refuses_paths_outside_the_target(tmp_path: Path) -> None:
    evil = tmp_path / "evil.tar.gz"
    with tarfile.open(evil, "w:gz") as tar:
        info = tarfile.TarInfo("../escape.txt")
        info.size = 3
        tar.addfile(info, io.BytesIO(b"bad"))
    with pytest.raises(ArchiveError, match="not a readable model archive"):
        archive.extract(evil, tmp_path / "out")
    assert not (tmp_path / "escape.txt").exists()
