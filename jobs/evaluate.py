"""SageMaker processing entry point: evaluates a model archive on the test split.

    python evaluate.py --model-dir /opt/ml/processing/model --test-dir /opt/ml/processing/test \
        --output-dir /opt/ml/processing/evaluation [--fgsm-epsilon 0.1] [--latency-samples 200]

Writes evaluation.json and PNG plots to --output-dir and prints `test:<metric>=value` lines.
The archive's checksums are verified before anything else is read from it.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

from lepton_ml.errors import JobFailure
from lepton_ml.processing import new_parser, run_processing


def evaluate_job(args: argparse.Namespace) -> None:
    if not 0 <= args.fgsm_epsilon <= 10:
        raise JobFailure(f"Invalid arguments: --fgsm-epsilon must be between 0 and 10, got {args.fgsm_epsilon}.")
    from lepton_ml import archive

    with tempfile.TemporaryDirectory(prefix="lepton-evaluate-") as work:
        model_dir, tarball = archive.locate(args.model_dir, Path(work))
        archive.verify_model_dir(model_dir)  # before anything is read from it (and before torch loads)

        from lepton_ml import metrics
        from lepton_ml.evaluation import evaluate, load_test_set, plot
        from lepton_ml.predictor import Predictor

        predictor = Predictor.load(model_dir, archive_sha256=archive.sha256_file(tarball) if tarball else None)
        print(f"model: content sha256 {predictor.content_sha256}; archive sha256 {predictor.archive_sha256}")
        test = load_test_set(args.test_dir, predictor)
        doc, report = evaluate(predictor, test, epsilon=args.fgsm_epsilon, latency_samples=args.latency_samples)
        args.output_dir.mkdir(parents=True, exist_ok=True)
        doc["plots"] = plot(predictor, test, report, args.output_dir)
        archive.write_json(args.output_dir / "evaluation.json", doc)
        metrics.emit({k: v for k, v in doc["metrics"].items() if v is not None}, prefix="test:")
        print(f"evaluation written to {args.output_dir / 'evaluation.json'}", flush=True)


def main(argv: list[str] | None = None) -> int:
    parser = new_parser("evaluate.py", "Evaluate a model archive on the test split.")
    parser.add_argument("--output-dir", type=Path, default=Path("/opt/ml/processing/evaluation"))
    parser.add_argument("--fgsm-epsilon", type=float, default=0.1,
                        help="FGSM step in standardised feature units")  # fmt: skip
    return run_processing(parser, evaluate_job, argv)


if __name__ == "__main__":
    sys.exit(main())
