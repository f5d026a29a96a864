"""What keeps a training job's start-up short: each trial of a tuning job is a process that pays it.

The per-epoch figures are computed without scikit-learn (its import loads scipy.stats, about 2 s of
CPU) and the optimiser steps without importing torch._dynamo (about 2.4 s): these tests hold the
figures equal to scikit-learn's, the weights bit for bit equal to optimizer.step()'s, and a real
job process free of both imports."""

from __future__ import annotations

import json
import math
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from sklearn import metrics as skm

from lepton_ml import training
from lepton_ml.metrics import quick_classification, quick_regression
from lepton_ml.model import ModelConfig, build_mlp

CASES = [
    (np.array([0, 1, 2, 2, 1, 0, 2]), np.array([0, 2, 2, 2, 1, 1, 0])),
    (np.array([0, 0, 0, 0]), np.array([0, 0, 1, 1])),  # a predicted class absent from the truth
    (np.array([1, 1, 1]), np.array([1, 1, 1])),
    (np.random.default_rng(3).integers(0, 5, 400), np.random.default_rng(4).integers(0, 4, 400)),
]


@pytest.mark.parametrize(("y_true", "y_pred"), CASES)
def test_epoch_classification_figures_equal_scikit_learns(y_true: np.ndarray, y_pred: np.ndarray) -> None:
    figures = quick_classification(y_true, y_pred)
    assert figures["accuracy"] == pytest.approx(skm.accuracy_score(y_true, y_pred), abs=1e-12)
    assert figures["f1_macro"] == pytest.approx(
        skm.f1_score(y_true, y_pred, average="macro", zero_division=0), abs=1e-12
    )


@pytest.mark.parametrize(
    ("y_true", "y_pred"),
    [
        (np.array([3.0, -1.0, 2.5, 7.0]), np.array([2.5, 0.0, 2.0, 8.0])),
        (np.array([2.0, 2.0, 2.0]), np.array([2.0, 2.0, 2.0])),  # constant target, perfect fit
        (np.array([2.0, 2.0, 2.0]), np.array([2.0, 1.0, 2.0])),  # constant target, imperfect fit
        (np.random.default_rng(5).normal(50, 20, 300), np.random.default_rng(6).normal(50, 25, 300)),
    ],
)
def test_epoch_regression_figures_equal_scikit_learns(y_true: np.ndarray, y_pred: np.ndarray) -> None:
    figures = quick_regression(y_true, y_pred)
    assert figures["rmse"] == pytest.approx(math.sqrt(skm.mean_squared_error(y_true, y_pred)), rel=1e-12)
    assert figures["mae"] == pytest.approx(skm.mean_absolute_error(y_true, y_pred), rel=1e-12)
    assert figures["r2"] == pytest.approx(skm.r2_score(y_true, y_pred), rel=1e-12, abs=1e-12)


@pytest.mark.parametrize("name", ["adam", "adamw", "sgd"])
def test_eager_step_trains_bit_for_bit_like_optimizer_step(name: str) -> None:
    weights = []
    for eager in (True, False):
        torch.manual_seed(0)
        model = build_mlp(ModelConfig("classification", 5, (8,), 3, dropout=0.0))
        optimizer = training.make_optimizer(name, model.parameters(), 0.01, 0.001, 0.9)
        step = training.eager_step(optimizer) if eager else optimizer.step
        generator = torch.Generator().manual_seed(1)
        x, y = torch.randn(64, 5, generator=generator), torch.randint(0, 3, (64,), generator=generator)
        for _ in range(25):
            if eager:
                training.clear_grads(optimizer)
            else:
                optimizer.zero_grad(set_to_none=True)
            torch.nn.functional.cross_entropy(model(x), y).backward()
            step()
        weights.append([p.detach().clone() for p in model.parameters()])
    assert all(torch.equal(a, b) for a, b in zip(*weights, strict=True))


def test_eager_step_falls_back_to_step_when_hooks_are_registered() -> None:
    model = build_mlp(ModelConfig("classification", 5, (8,), 3))
    optimizer = training.make_optimizer("adam", model.parameters(), 0.01, 0.0, 0.9)
    calls = []
    optimizer.register_step_post_hook(lambda *_: calls.append(1))
    step = training.eager_step(optimizer)
    torch.nn.functional.cross_entropy(model(torch.randn(4, 5)), torch.tensor([0, 1, 2, 0])).backward()
    step()
    assert calls == [1]


def test_a_training_job_process_imports_neither_scikit_learn_nor_torch_dynamo(
    source_dir: Path, datasets: dict[str, Path], job_env, tmp_path: Path
) -> None:
    """train.py as SageMaker runs it, under a probe that prints which modules the process loaded."""
    probe = tmp_path / "probe.py"
    probe.write_text(
        "import atexit, json, os, runpy, sys\n"
        "atexit.register(lambda: print('LOADED=' + json.dumps(sorted(m for m in sys.modules "
        "if m.split('.')[0] in ('sklearn', 'scipy') or m.startswith('torch._dynamo')))))\n"
        "sys.argv = sys.argv[1:]\n"
        "sys.path.insert(0, os.path.dirname(sys.argv[0]))\n"
        "runpy.run_path(sys.argv[0], run_name='__main__')\n"
    )
    stats = tmp_path / "stats"
    stats.mkdir()
    (stats / "stats.json").write_bytes((datasets["wine"] / "stats.json").read_bytes())
    env = job_env(
        {
            "SM_MODEL_DIR": str(tmp_path / "model"),
            "SM_OUTPUT_DIR": str(tmp_path / "output"),
            "SM_INPUT_CONFIG_DIR": str(tmp_path / "config"),
            "SM_CHANNEL_TRAIN": str(datasets["wine"] / "train"),
            "SM_CHANNEL_VALIDATION": str(datasets["wine"] / "validation"),
            "SM_CHANNEL_STATS": str(stats),
        }
    )
    result = subprocess.run(
        [sys.executable, str(probe), str(source_dir / "train.py"), "--epochs", "2"],
        env=env,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    (line,) = [x for x in result.stdout.splitlines() if x.startswith("LOADED=")]
    assert json.loads(line.removeprefix("LOADED=")) == []
    assert "validation:f1_macro=" in result.stdout
    assert (tmp_path / "model" / "model.pt").is_file()
