"""A verified, loaded model archive that turns raw feature rows into predictions.

Used by the inference handler, evaluate and compress, so all three predict the same way.
Imports only numpy and torch besides this package (the inference containers have both).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from lepton_ml import archive
from lepton_ml.errors import ArchiveError
from lepton_ml.model import ModelConfig, load_model
from lepton_ml.preprocessing import Preprocessor


@dataclass
class Prediction:
    """Classification: ``indices`` and ``probabilities``; regression: ``values`` (original units)."""

    indices: np.ndarray | None = None
    probabilities: np.ndarray | None = None
    values: np.ndarray | None = None


@dataclass
class Predictor:
    model: nn.Module
    config: ModelConfig
    preprocessor: Preprocessor
    metadata: dict[str, Any]
    model_dir: Path
    content_sha256: str
    archive_sha256: str | None = None
    device: torch.device = field(default_factory=lambda: torch.device("cpu"))

    @classmethod
    def load(cls, model_dir: Path, *, archive_sha256: str | None = None, device: str = "auto") -> Predictor:
        """Verifies checksums.json, then loads. int8 models always run on the CPU."""
        archive.verify_model_dir(model_dir)
        try:
            config = ModelConfig.from_json(archive.read_json(model_dir, archive.CONFIG_FILE))
            preprocessor = Preprocessor.from_json(archive.read_json(model_dir, archive.PREPROCESSING_FILE))
        except (KeyError, TypeError, ValueError) as exc:
            raise ArchiveError(f"The model archive's configuration is invalid: {exc}") from exc
        metadata = archive.read_json(model_dir, archive.METADATA_FILE)
        if preprocessor.input_dim != config.input_dim or preprocessor.output_dim != config.output_dim:
            raise ArchiveError(
                "The model archive is inconsistent: preprocessing.json encodes "
                f"{preprocessor.input_dim} inputs / {preprocessor.output_dim} outputs, "
                f"model_config.json expects {config.input_dim} / {config.output_dim}."
            )
        try:
            model = load_model(config, model_dir / archive.MODEL_FILE)
        except (RuntimeError, ValueError, KeyError) as exc:
            raise ArchiveError(f"The model archive's model.pt does not load into its model_config.json: {exc}") from exc
        use_cuda = device in ("auto", "cuda") and torch.cuda.is_available() and config.quantization is None
        target = torch.device("cuda" if use_cuda else "cpu")
        return cls(
            model=model.to(target).eval(),
            config=config,
            preprocessor=preprocessor,
            metadata=metadata,
            model_dir=model_dir,
            content_sha256=archive.content_sha256(model_dir),
            archive_sha256=archive_sha256,
            device=target,
        )

    @property
    def task(self) -> str:
        return self.preprocessor.task

    def forward(self, x: np.ndarray | torch.Tensor) -> torch.Tensor:
        """Raw model output (logits, or the standardised target) for encoded features, on the CPU."""
        tensor = torch.as_tensor(x, dtype=torch.float32).to(self.device)
        with torch.inference_mode():
            return self.model(tensor).float().cpu()

    def predict_encoded(self, x: np.ndarray) -> Prediction:
        out = self.forward(x)
        if self.task == "classification":
            proba = torch.softmax(out.double(), dim=1).numpy()
            return Prediction(indices=proba.argmax(axis=1), probabilities=proba)
        return Prediction(values=self.preprocessor.decode_regression(out.squeeze(-1).numpy()))

    def predict_rows(self, instances: list[Any]) -> Prediction:
        """Raw request rows (lists in feature order or feature objects) to predictions."""
        return self.predict_encoded(self.preprocessor.encode_request(instances))

    def labels(self, prediction: Prediction) -> list[Any]:
        if prediction.indices is not None:
            return [self.preprocessor.class_label(int(i)) for i in prediction.indices]
        assert prediction.values is not None
        return [float(v) for v in prediction.values]

    def model_info(self, version: str | None = None) -> dict[str, Any]:
        info: dict[str, Any] = {"sha256": self.archive_sha256, "content_sha256": self.content_sha256}
        if version:
            info["version"] = version
        return info
