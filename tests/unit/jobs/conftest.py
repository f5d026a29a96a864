"""Fixtures for the SageMaker job code: curated datasets from scikit-learn, and a sandbox that runs
the entry points as real subprocesses under the SageMaker container contract."""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
import tarfile
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[3]
JOBS = ROOT / "jobs"
HERE = Path(__file__).resolve().parent


def _load_helper() -> ModuleType:
    # Loaded by path: a site-packages package named `tests` shadows this folder as a package.
    spec = importlib.util.spec_from_file_location("lepton_jobs_curated_data", HERE / "curated_data.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


curated_data = _load_helper()


@pytest.fixture(scope="session")
def curated() -> ModuleType:
    return curated_data


@pytest.fixture(scope="session")
def datasets(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """breast_cancer, wine and diabetes in the curated layout (diabetes with a categorical column)."""
    root = tmp_path_factory.mktemp("curated")
    out = {}
    for name in ("breast_cancer", "wine", "diabetes"):
        frame, target, task, categorical = curated_data.sklearn_frame(name)
        out[name] = curated_data.write_curated(
            root / name, frame, target=target, task=task, categorical=categorical, project=name, parts=2
        )
    return out


@pytest.fixture(scope="session")
def source_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """jobs/ packed as sourcedir.tar.gz and unpacked elsewhere, as SageMaker does with source_dir."""
    work = tmp_path_factory.mktemp("sourcedir")
    tarball = work / "sourcedir.tar.gz"
    with tarfile.open(tarball, "w:gz") as tar:
        for path in sorted(JOBS.rglob("*")):
            relative = path.relative_to(JOBS)
            if path.is_file() and "__pycache__" not in relative.parts:
                tar.add(path, arcname=relative.as_posix())
    code = work / "code"
    with tarfile.open(tarball) as tar:
        tar.extractall(code, filter="data")
    return code


def subprocess_env(extra: dict[str, str] | None = None) -> dict[str, str]:
    """The test's environment without PYTHONPATH: the jobs must run from their own folder alone."""
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH" and not k.startswith(("SM_", "LEPTON_"))}
    env["PYTHONDONTWRITEBYTECODE"] = "1"
    # Two cores shared with pytest, and models this small: intra-op threads only add start-up spin.
    env["OMP_NUM_THREADS"] = "1"
    env.update(extra or {})
    return env


@pytest.fixture(scope="session")
def job_env() -> Any:
    """subprocess_env, for tests that start processes themselves."""
    return subprocess_env


def run_script(
    source_dir: Path, script: str, args: Sequence[str], env: dict[str, str], cwd: Path, timeout: float = 180
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(source_dir / script), *args],
        env=env,
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


@dataclass
class TrainingRun:
    """One training job in a sandbox that stands in for /opt/ml."""

    root: Path
    result: subprocess.CompletedProcess[str] | None = None
    env: dict[str, str] = field(default_factory=dict)

    @property
    def model_dir(self) -> Path:
        return self.root / "model"

    @property
    def output_dir(self) -> Path:
        return self.root / "output"

    @property
    def failure(self) -> str | None:
        path = self.output_dir / "failure"
        return path.read_text() if path.exists() else None

    def tarball(self) -> Path:
        """model.tar.gz as SageMaker makes it from SM_MODEL_DIR (a plain tar of the folder)."""
        out = self.root / "artifact" / "model.tar.gz"
        out.parent.mkdir(parents=True, exist_ok=True)
        with tarfile.open(out, "w:gz") as tar:
            for path in sorted(self.model_dir.rglob("*")):
                if path.is_file():
                    tar.add(path, arcname=path.relative_to(self.model_dir).as_posix())
        return out


class Sandbox:
    def __init__(self, source_dir: Path, tmp: Path) -> None:
        self.source_dir = source_dir
        self.tmp = tmp

    def train(
        self,
        dataset: Path,
        args: Sequence[str] = (),
        *,
        hyperparameters: dict[str, Any] | None = None,
        channels: Sequence[str] = ("train", "validation", "stats"),
        name: str = "job",
    ) -> TrainingRun:
        root = self.tmp / name
        run = TrainingRun(root)
        stats_channel = root / "input" / "data" / "stats"
        stats_channel.mkdir(parents=True)
        (stats_channel / "stats.json").write_bytes((dataset / "stats.json").read_bytes())
        locations = {"train": dataset / "train", "validation": dataset / "validation", "stats": stats_channel}
        config_dir = root / "input" / "config"
        config_dir.mkdir(parents=True)
        if hyperparameters is not None:
            (config_dir / "hyperparameters.json").write_text(json.dumps(hyperparameters))
        env = {
            "SM_MODEL_DIR": str(run.model_dir),
            "SM_OUTPUT_DIR": str(run.output_dir),
            "SM_OUTPUT_DATA_DIR": str(run.output_dir / "data"),
            "SM_INPUT_CONFIG_DIR": str(config_dir),
            "TRAINING_JOB_NAME": name,
        }
        for channel in channels:
            env[f"SM_CHANNEL_{channel.upper()}"] = str(locations[channel])
        run.model_dir.mkdir(parents=True)
        run.env = subprocess_env(env)
        run.result = run_script(self.source_dir, "train.py", args, run.env, cwd=root)
        return run

    def process(self, script: str, args: Sequence[str], name: str) -> tuple[subprocess.CompletedProcess[str], Path]:
        """Runs a processing entry point; returns the result and its relocated failure message path."""
        root = self.tmp / name
        root.mkdir(parents=True)
        message = root / "output" / "message"
        result = run_script(self.source_dir, script, [*args, "--failure-file", str(message)], subprocess_env(), root)
        return result, message


@pytest.fixture(scope="session")
def sandbox(source_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Sandbox:
    return Sandbox(source_dir, tmp_path_factory.mktemp("sm"))


# The breast-cancer model that evaluate, compress, serve and the accuracy test share.
BREAST_CANCER_HPS = ["--epochs", "200", "--patience", "20", "--hidden-sizes", "64,32", "--seed", "7"]


@pytest.fixture(scope="session")
def breast_cancer_hps() -> list[str]:
    return list(BREAST_CANCER_HPS)


@pytest.fixture(scope="session")
def metric_definitions() -> list[dict[str, str]]:
    return json.loads((JOBS / "metric_definitions.json").read_text())


@pytest.fixture(scope="session")
def breast_cancer_run(sandbox: Sandbox, datasets: dict[str, Path]) -> TrainingRun:
    run = sandbox.train(datasets["breast_cancer"], BREAST_CANCER_HPS, name="breast-cancer")
    assert run.result is not None
    assert run.result.returncode == 0, run.result.stderr
    return run


@pytest.fixture(scope="session")
def diabetes_run(sandbox: Sandbox, datasets: dict[str, Path]) -> TrainingRun:
    """A regression with a categorical feature."""
    run = sandbox.train(
        datasets["diabetes"], ["--epochs", "60", "--patience", "10", "--learning-rate", "0.003"], name="diabetes"
    )
    assert run.result is not None
    assert run.result.returncode == 0, run.result.stderr
    return run


@pytest.fixture(scope="session")
def breast_cancer_tarball(breast_cancer_run: TrainingRun) -> Path:
    return breast_cancer_run.tarball()


@pytest.fixture(scope="session")
def breast_cancer_evaluation(sandbox: Sandbox, breast_cancer_tarball: Path, datasets: dict[str, Path]) -> dict:
    """evaluate.py as a processing job on the breast-cancer model.tar.gz and test split."""
    out = sandbox.tmp / "evaluation"
    result, message = sandbox.process(
        "evaluate.py",
        ["--model-dir", str(breast_cancer_tarball.parent), "--test-dir", str(datasets["breast_cancer"] / "test"),
         "--output-dir", str(out), "--fgsm-epsilon", "0.3", "--latency-samples", "50"],
        name="evaluate",
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert not message.exists()
    return {"doc": json.loads((out / "evaluation.json").read_text()), "dir": out, "stdout": result.stdout}


# hyperparameters.json as the SageMaker SDK writes it: JSON-encoded strings, its own names beside ours
WINE_HYPERPARAMETERS = {
    "epochs": "3",
    "hidden_sizes": '"16,8"',
    "learning_rate": "0.01",
    "optimizer": '"sgd"',
    "sagemaker_program": '"train.py"',
    "sagemaker_submit_directory": '"s3://bucket/sourcedir.tar.gz"',
    "_tuning_objective_metric": '"validation:accuracy"',
}


@pytest.fixture(scope="session")
def wine_hyperparameters() -> dict[str, str]:
    return dict(WINE_HYPERPARAMETERS)


@pytest.fixture(scope="session")
def wine_run(sandbox: Sandbox, datasets: dict[str, Path]) -> TrainingRun:
    """A short multi-class job configured through hyperparameters.json, the command line on top."""
    run = sandbox.train(datasets["wine"], ["--epochs", "4"], hyperparameters=WINE_HYPERPARAMETERS, name="wine")
    assert run.result is not None
    assert run.result.returncode == 0, run.result.stderr
    return run


@pytest.fixture(scope="session")
def entry_point() -> Any:
    """Loads jobs/<name>.py in process under a private module name (its main(argv) returns the exit code)."""
    loaded: dict[str, ModuleType] = {}

    def load(name: str) -> ModuleType:
        if name not in loaded:
            spec = importlib.util.spec_from_file_location(f"lepton_jobs_{name}", JOBS / f"{name}.py")
            assert spec and spec.loader
            module = importlib.util.module_from_spec(spec)
            sys.modules[spec.name] = module
            spec.loader.exec_module(module)
            loaded[name] = module
        return loaded[name]

    return load


@pytest.fixture(autouse=True)
def single_torch_thread() -> Iterator[None]:
    """In-process training of tiny models: one intra-op thread (two cores, shared with subprocesses)."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)
