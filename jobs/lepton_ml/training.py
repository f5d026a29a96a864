"""The training loop: prebuilt tensors on the device, shuffled batches, early stopping on validation loss."""

from __future__ import annotations

import math
import os
import random
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
from torch import nn

from lepton_ml.errors import JobFailure

EVAL_CHUNK = 65_536


def resolve_device(requested: str, cuda_available: bool | None = None) -> torch.device:
    """``auto`` takes CUDA when present and the CPU otherwise; ``cuda`` without a GPU is an error."""
    available = torch.cuda.is_available() if cuda_available is None else cuda_available
    if requested == "auto":
        return torch.device("cuda" if available else "cpu")
    if requested == "cuda" and not available:
        raise JobFailure(
            "Hyperparameter 'device' = 'cuda' but no CUDA device is available on this instance; "
            "use device=auto or a GPU instance type."
        )
    if requested not in ("cpu", "cuda"):
        raise JobFailure(f"Hyperparameter 'device' = {requested!r}: expected auto, cpu or cuda.")
    return torch.device(requested)


def set_seeds(seed: int, device: torch.device) -> None:
    """Seeds python, numpy and torch; on CUDA also asks for deterministic kernels.

    The CPU kernels this model uses (addmm, relu, dropout from the seeded generator, index_select,
    the optimisers) are deterministic already, and torch.use_deterministic_algorithms costs about
    2 s of imports (it configures torch._inductor), so it is only turned on for CUDA, where cuBLAS
    and scatter kernels otherwise vary. CUBLAS_WORKSPACE_CONFIG must be set before CUDA initialises.
    """
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)
    if device.type == "cuda":
        os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
        torch.use_deterministic_algorithms(True, warn_only=True)
        torch.backends.cudnn.benchmark = False


def _defer_dynamo_on_construction() -> None:
    """Optimizer.__init__ calls add_param_group, which torch wraps in torch._disable_dynamo: its first
    call imports torch._dynamo (about 2.4 s of CPU: sympy, the meta registrations) only to mark the
    method as not compilable. Nothing is compiled in this process, so the method is marked as its own
    disabled form, which is what that wrapper calls when dynamo is not tracing. Skipped once dynamo is
    imported (then the import is paid) or when torch's wrapping differs from the one known here."""
    if "torch._dynamo" in sys.modules:
        return
    raw = getattr(torch.optim.Optimizer.add_param_group, "__wrapped__", None)
    if raw is not None and getattr(raw, "__name__", "") == "add_param_group":
        raw.__dynamo_disable = raw


def eager_step(optimizer: torch.optim.Optimizer) -> Callable[[], None]:
    """A function equivalent to ``optimizer.step()`` in eager mode that does not import torch._dynamo.

    torch.optim wraps every step() in _use_grad_for_differentiable, which imports torch._dynamo for
    graph breaks that only matter under torch.compile (about 2.4 s of CPU per process; each trial of a
    tuning job is a process), then runs the step with grad disabled. The unwrapped step under no_grad
    is that same computation. Falls back to ``optimizer.step`` where the wrapping is not the one known
    here, where step hooks are registered or for differentiable optimisers; a test holds the weights
    bit for bit equal to optimizer.step()'s."""
    chain = []
    current: Any = type(optimizer).step
    while current is not None:
        chain.append(current)
        current = getattr(current, "__wrapped__", None)
    names = [getattr(fn, "__code__", None) and fn.__code__.co_name for fn in chain]
    raw = chain[-1]
    from torch.optim import optimizer as optim_module

    hooks = any(
        getattr(owner, name, None)
        for owner, name in (
            (optimizer, "_optimizer_step_pre_hooks"),
            (optimizer, "_optimizer_step_post_hooks"),
            (optim_module, "_global_optimizer_pre_hooks"),
            (optim_module, "_global_optimizer_post_hooks"),
        )
    )
    if "_use_grad" not in names or raw.__name__ != "step" or hooks or optimizer.defaults.get("differentiable"):
        return optimizer.step

    def step() -> None:
        with torch.no_grad():
            raw(optimizer)

    return step


def clear_grads(optimizer: torch.optim.Optimizer) -> None:
    """``optimizer.zero_grad(set_to_none=True)`` without its torch._dynamo import (see eager_step)."""
    for group in optimizer.param_groups:
        for param in group["params"]:
            param.grad = None


def make_optimizer(name: str, params: Any, lr: float, weight_decay: float, momentum: float) -> torch.optim.Optimizer:
    _defer_dynamo_on_construction()
    if name == "adam":
        return torch.optim.Adam(params, lr=lr, weight_decay=weight_decay)
    if name == "adamw":
        return torch.optim.AdamW(params, lr=lr, weight_decay=weight_decay)
    if name == "sgd":
        return torch.optim.SGD(params, lr=lr, weight_decay=weight_decay, momentum=momentum)
    raise JobFailure(f"Hyperparameter 'optimizer' = {name!r}: expected adam, adamw or sgd.")


def loss_function(task: str) -> nn.Module:
    return nn.CrossEntropyLoss() if task == "classification" else nn.MSELoss()


def _as_target(output: torch.Tensor, task: str) -> torch.Tensor:
    return output if task == "classification" else output.squeeze(-1)


@dataclass
class EpochResult:
    epoch: int
    train_loss: float
    validation_loss: float
    samples_per_second: float
    validation_output: torch.Tensor  # logits or standardised predictions on the validation split (CPU)


@dataclass
class FitResult:
    best_epoch: int
    epochs_run: int
    stopped_early: bool
    history: list[dict[str, float]] = field(default_factory=list)
    best_validation_output: torch.Tensor | None = None


class TrainingDiverged(JobFailure):
    pass


def predict_batches(model: nn.Module, x: torch.Tensor, chunk: int = EVAL_CHUNK) -> torch.Tensor:
    """Model output for ``x`` in eval mode, in chunks, without autograd."""
    model.eval()
    with torch.inference_mode():
        if len(x) <= chunk:
            return model(x)
        return torch.cat([model(x[i : i + chunk]) for i in range(0, len(x), chunk)])


def fit(
    model: nn.Module,
    x_train: torch.Tensor,
    y_train: torch.Tensor,
    x_val: torch.Tensor,
    y_val: torch.Tensor,
    *,
    task: str,
    optimizer: torch.optim.Optimizer,
    epochs: int,
    batch_size: int,
    patience: int,
    seed: int,
    on_epoch: Callable[[EpochResult], dict[str, float]] | None = None,
) -> FitResult:
    """Trains in place and leaves the best weights (lowest validation loss) in ``model``.

    Tensors must already be on the model's device. The only host synchronisations per epoch are
    the two loss read-outs; the batch loop runs no per-sample Python. ``on_epoch`` receives each
    epoch's result and returns extra metrics for the history.
    """
    loss_fn = loss_function(task)
    n = len(x_train)
    generator = torch.Generator(device=x_train.device)
    generator.manual_seed(seed)
    starts = range(0, n, batch_size)
    batch_sizes = torch.tensor([min(batch_size, n - s) for s in starts], dtype=torch.float32, device=x_train.device)

    step = eager_step(optimizer)
    best_loss = math.inf
    best_state: dict[str, torch.Tensor] | None = None
    result = FitResult(best_epoch=0, epochs_run=0, stopped_early=False)
    stale = 0
    for epoch in range(1, epochs + 1):
        model.train()
        started = time.perf_counter()
        order = torch.randperm(n, generator=generator, device=x_train.device)
        losses = []
        for start in starts:
            idx = order[start : start + batch_size]
            output = model(x_train[idx])
            loss = loss_fn(_as_target(output, task), y_train[idx])
            clear_grads(optimizer)
            loss.backward()
            step()
            losses.append(loss.detach())
        train_loss = float((torch.stack(losses) * batch_sizes).sum().item() / n)
        elapsed = time.perf_counter() - started
        if not math.isfinite(train_loss):
            raise TrainingDiverged(
                f"Training diverged: the training loss became {train_loss} in epoch {epoch}. "
                "Lower learning_rate (or use optimizer=adam) and check the data for extreme values."
            )
        val_output = predict_batches(model, x_val)
        val_loss = float(loss_fn(_as_target(val_output, task), y_val).item())
        if not math.isfinite(val_loss):
            raise TrainingDiverged(
                f"Training diverged: the validation loss became {val_loss} in epoch {epoch}. "
                "Lower learning_rate and check the data for extreme values."
            )
        epoch_result = EpochResult(epoch, train_loss, val_loss, n / elapsed if elapsed > 0 else math.inf,
                                   val_output.detach().cpu())  # fmt: skip
        row = {"epoch": float(epoch), "train:loss": train_loss, "validation:loss": val_loss,
               "train:samples_per_second": epoch_result.samples_per_second}  # fmt: skip
        if on_epoch is not None:
            row.update(on_epoch(epoch_result))
        result.history.append(row)
        result.epochs_run = epoch
        if val_loss < best_loss:
            best_loss = val_loss
            best_state = {k: v.detach().clone() for k, v in model.state_dict().items()}
            result.best_epoch = epoch
            result.best_validation_output = epoch_result.validation_output
            stale = 0
        else:
            stale += 1
            if stale >= patience:
                result.stopped_early = epoch < epochs
                break
    if best_state is not None:
        model.load_state_dict(best_state)
    model.eval()
    return result
