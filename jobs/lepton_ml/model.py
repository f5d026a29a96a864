"""The tabular MLP, its model_config.json, and model.pt in its three forms (dense, int8, sparse)."""

from __future__ import annotations

import warnings
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import asdict, dataclass, replace
from typing import Any, Literal

import torch
from torch import nn

Quantization = Literal["dynamic_int8"] | None


@dataclass(frozen=True)
class ModelConfig:
    """model_config.json: everything needed to rebuild the module before loading model.pt."""

    task: Literal["classification", "regression"]
    input_dim: int
    hidden_sizes: tuple[int, ...]
    output_dim: int
    dropout: float = 0.0
    quantization: Quantization = None
    pruning: dict[str, Any] | None = None
    architecture: str = "mlp"

    def to_json(self) -> dict[str, Any]:
        doc = asdict(self)
        doc["hidden_sizes"] = list(self.hidden_sizes)
        return doc

    @classmethod
    def from_json(cls, doc: Mapping[str, Any]) -> ModelConfig:
        if doc.get("architecture") != "mlp":
            raise ValueError(f"model_config.json: unsupported architecture {doc.get('architecture')!r}")
        return cls(
            task=doc["task"],
            input_dim=int(doc["input_dim"]),
            hidden_sizes=tuple(int(h) for h in doc["hidden_sizes"]),
            output_dim=int(doc["output_dim"]),
            dropout=float(doc.get("dropout", 0.0)),
            quantization=doc.get("quantization"),
            pruning=doc.get("pruning"),
        )

    def with_compression(self, quantization: Quantization, pruning: dict[str, Any] | None) -> ModelConfig:
        return replace(self, quantization=quantization, pruning=pruning)


def build_mlp(config: ModelConfig) -> nn.Sequential:
    """Linear -> ReLU -> Dropout per hidden layer, then a Linear head (logits or one value)."""
    layers: list[nn.Module] = []
    width = config.input_dim
    for hidden in config.hidden_sizes:
        layers += [nn.Linear(width, hidden), nn.ReLU()]
        if config.dropout > 0:
            layers.append(nn.Dropout(config.dropout))
        width = hidden
    layers.append(nn.Linear(width, config.output_dim))
    return nn.Sequential(*layers)


def linear_layers(model: nn.Module) -> list[nn.Linear]:
    return [m for m in model.modules() if isinstance(m, nn.Linear)]


@contextmanager
def _quiet_quantization() -> Iterator[None]:
    """torch.ao.quantization warns that it is deprecated in favour of torchao; it still works."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=r".*torch\.ao\.quantization is deprecated.*")
        warnings.filterwarnings("ignore", message=r".*quantized tensor creation functions.*")
        warnings.filterwarnings("ignore", message=r".*TypedStorage is deprecated.*")
        yield


def quantize_dynamic_int8(model: nn.Module) -> nn.Module:
    """Dynamic int8 quantisation of the Linear layers (weights int8, activations quantised per batch)."""
    from torch.ao.quantization import quantize_dynamic

    with _quiet_quantization():
        return quantize_dynamic(model.cpu().eval(), {nn.Linear}, dtype=torch.qint8)


# -- model.pt ------------------------------------------------------------------------------------
SPARSE_SUFFIX = ".__csr"


def dense_to_storage(state: Mapping[str, torch.Tensor], *, sparse: bool) -> dict[str, Any]:
    """What model.pt holds. With ``sparse``, every 2-D weight that is smaller as CSR (int32
    indices) is stored as crow/col/values under '<name>.__csr'; the rest stays dense."""
    out: dict[str, Any] = {}
    for name, tensor in state.items():
        if sparse and tensor.dim() == 2 and tensor.dtype.is_floating_point:
            with warnings.catch_warnings():
                warnings.filterwarnings("ignore", message=r".*Sparse CSR tensor support is in beta.*")
                csr = tensor.detach().cpu().to_sparse_csr()
            crow = csr.crow_indices().to(torch.int32)
            col = csr.col_indices().to(torch.int32)
            values = csr.values()
            sparse_bytes = 4 * (crow.numel() + col.numel()) + values.element_size() * values.numel()
            if sparse_bytes < tensor.element_size() * tensor.numel():
                out[name + SPARSE_SUFFIX] = {
                    "crow": crow.clone(),
                    "col": col.clone(),
                    "values": values.clone(),
                    "shape": list(tensor.shape),
                }
                continue
        out[name] = tensor.detach().cpu().clone() if isinstance(tensor, torch.Tensor) else tensor
    return out


def storage_to_dense(stored: Mapping[str, Any]) -> dict[str, Any]:
    state: dict[str, Any] = {}
    for name, value in stored.items():
        if name.endswith(SPARSE_SUFFIX):
            with warnings.catch_warnings():
                warnings.filterwarnings("ignore", message=r".*Sparse CSR tensor support is in beta.*")
                # check_invariants: a malformed file must raise, not read out of bounds
                csr = torch.sparse_csr_tensor(
                    value["crow"].to(torch.int64),
                    value["col"].to(torch.int64),
                    value["values"],
                    size=value["shape"],
                    check_invariants=True,
                )
            state[name.removesuffix(SPARSE_SUFFIX)] = csr.to_dense()
        else:
            state[name] = value
    return state


def save_model(model: nn.Module, config: ModelConfig, path: Any) -> None:
    state = model.state_dict()
    sparse = config.pruning is not None and config.quantization is None
    with _quiet_quantization():
        torch.save(dense_to_storage(state, sparse=sparse) if sparse else state, path)


def load_model(config: ModelConfig, path: Any) -> nn.Module:
    """Rebuilds the module for ``config`` and loads model.pt (weights only: no pickled code runs)."""
    model = build_mlp(config)
    with _quiet_quantization():
        stored = torch.load(path, map_location="cpu", weights_only=True)
        if config.quantization == "dynamic_int8":
            quantized = quantize_dynamic_int8(model)
            quantized.load_state_dict(stored)
            return quantized.eval()
        if config.quantization is not None:
            raise ValueError(f"model_config.json: unsupported quantization {config.quantization!r}")
    model.load_state_dict(storage_to_dense(stored))
    return model.eval()


def float_copy(model: nn.Module, config: ModelConfig) -> nn.Module:
    """A float module with the same weights (dequantised for an int8 model): differentiable, for FGSM."""
    if config.quantization is None:
        return model
    dense = build_mlp(config.with_compression(None, None))
    # torch.ao.nn.quantized.dynamic.Linear exposes weight() and bias() as methods
    quantized_layers: list[Any] = [m for m in model.modules() if callable(getattr(m, "weight", None))]
    for target, source in zip(linear_layers(dense), quantized_layers, strict=True):
        with torch.no_grad():
            target.weight.copy_(source.weight().dequantize())
            target.bias.copy_(source.bias())
    return dense.eval()


def count_nonzero_weights(model: nn.Module) -> tuple[int, int]:
    """(non-zero, total) over the Linear weight matrices of a float model."""
    nonzero = total = 0
    for layer in linear_layers(model):
        nonzero += int(torch.count_nonzero(layer.weight).item())
        total += layer.weight.numel()
    return nonzero, total
