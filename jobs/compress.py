"""SageMaker processing entry point: compresses a model archive into a child candidate.

    python compress.py --model-dir /opt/ml/processing/model --test-dir /opt/ml/processing/test \
        --output-dir /opt/ml/processing/output [--method quantize|prune|prune+quantize] [--prune-amount 0.5]

Writes the child model.tar.gz (its metadata.json names the parent archive's sha256) and
compression.json (sizes, latency and metric deltas on the test split) to --output-dir.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path
from typing import Any

from lepton_ml.errors import JobFailure
from lepton_ml.processing import new_parser, run_processing

SOURCE_DIR = Path(__file__).resolve().parent


def _delta(child: float | None, parent: float | None) -> float | None:
    return None if child is None or parent is None else child - parent


def compress_job(args: argparse.Namespace) -> None:
    from lepton_ml import archive

    with tempfile.TemporaryDirectory(prefix="lepton-compress-") as work:
        parent_dir, tarball = archive.locate(args.model_dir, Path(work) / "parent")
        if tarball is None:
            raise JobFailure(
                f"--model-dir {args.model_dir} must be the parent's model.tar.gz (or a folder holding it): "
                "the child records the parent archive's sha256 and size."
            )
        archive.verify_model_dir(parent_dir)

        from lepton_ml import metrics
        from lepton_ml.compression import compress_model, record_child_metrics, write_child
        from lepton_ml.evaluation import headline, latency, load_test_set, quality
        from lepton_ml.predictor import Predictor

        parent_sha = archive.sha256_file(tarball)
        parent = Predictor.load(parent_dir, archive_sha256=parent_sha)
        test = load_test_set(args.test_dir, parent)
        rows = test.rows(parent.preprocessor.feature_names)

        compressed = compress_model(parent, args.method, args.prune_amount)
        child_dir = write_child(parent, compressed, parent_sha, SOURCE_DIR, Path(work) / "child")
        child = Predictor.load(child_dir)  # the child as written, through the same loader as serving

        keys = headline(parent.task)
        parent_metrics = {k: quality(parent, test)["metrics"].get(k) for k in keys}
        child_metrics = {k: quality(child, test)["metrics"].get(k) for k in keys}
        parent_latency = latency(parent, rows, args.latency_samples)
        child_latency = latency(child, rows, args.latency_samples)
        record_child_metrics(child_dir, child_metrics, {f"test:{k}": v for k, v in parent_metrics.items()})

        args.output_dir.mkdir(parents=True, exist_ok=True)
        child_tarball = args.output_dir / "model.tar.gz"
        child_sha = archive.pack(child_dir, child_tarball)

        def sizes(model_dir: Path, tar: Path) -> dict[str, int]:
            return {"archive": tar.stat().st_size, "model_pt": (model_dir / archive.MODEL_FILE).stat().st_size}

        parent_sizes, child_sizes = sizes(parent_dir, tarball), sizes(child_dir, child_tarball)
        doc: dict[str, Any] = {
            "schema_version": 1,
            "task": parent.task,
            "method": args.method,
            "compression": compressed.details,
            "test_rows": len(test.x),
            "parent": {"archive_sha256": parent_sha, "content_sha256": parent.content_sha256,
                       "size_bytes": parent_sizes, "metrics": parent_metrics, "latency_ms": parent_latency},
            "child": {"archive_sha256": child_sha, "content_sha256": archive.content_sha256(child_dir),
                      "size_bytes": child_sizes, "metrics": child_metrics, "latency_ms": child_latency},
            "deltas": {
                "size_bytes": {k: child_sizes[k] - parent_sizes[k] for k in parent_sizes},
                "size_ratio": {k: child_sizes[k] / parent_sizes[k] for k in parent_sizes},
                "metrics": {k: _delta(child_metrics[k], parent_metrics[k]) for k in keys},
                "latency_ms": {k: child_latency[k] - parent_latency[k] for k in ("p50", "p95", "p99")},
            },
            "smaller": child_sizes["archive"] < parent_sizes["archive"],
        }  # fmt: skip
        archive.write_json(args.output_dir / "compression.json", doc)
        metrics.emit({f"child:{k}": v for k, v in child_metrics.items() if v is not None})
        metrics.emit({f"delta:{k}": v for k, v in doc["deltas"]["metrics"].items() if v is not None})
        metrics.emit({"child:archive_bytes": child_sizes["archive"], "parent:archive_bytes": parent_sizes["archive"]})
        print(f"child archive {child_tarball} (sha256 {child_sha}) from parent {parent_sha}", flush=True)


def main(argv: list[str] | None = None) -> int:
    parser = new_parser("compress.py", "Compress a model archive into a child candidate.")
    parser.add_argument("--output-dir", type=Path, default=Path("/opt/ml/processing/output"))
    parser.add_argument("--method", default="quantize", choices=["quantize", "prune", "prune+quantize"])
    parser.add_argument("--prune-amount", type=float, default=0.5,
                        help="fraction of Linear weights set to zero (global magnitude)")  # fmt: skip
    return run_processing(parser, compress_job, argv)


if __name__ == "__main__":
    sys.exit(main())
