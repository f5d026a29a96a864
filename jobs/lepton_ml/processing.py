"""Shared plumbing of the processing jobs (evaluate, compress): arguments, model and test inputs.

Every path is an argument whose default is the SageMaker processing path, so a local runner can
relocate /opt/ml by rewriting the arguments.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, NoReturn

from lepton_ml.errors import JobFailure
from lepton_ml.failure import run_job

DEFAULT_FAILURE_FILE = "/opt/ml/output/message"


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        raise JobFailure(f"Invalid arguments for {self.prog}: {message}.")


def new_parser(prog: str, description: str) -> argparse.ArgumentParser:
    parser = _Parser(prog=prog, description=description)
    parser.add_argument("--model-dir", type=Path, default=Path("/opt/ml/processing/model"),
                        help="model.tar.gz, a folder holding it, or an extracted archive")  # fmt: skip
    parser.add_argument("--test-dir", type=Path, default=Path("/opt/ml/processing/test"),
                        help="the test split's parquet parts")  # fmt: skip
    parser.add_argument("--failure-file", type=Path, default=Path(DEFAULT_FAILURE_FILE),
                        help="where the failure reason goes (SageMaker reports it as FailureReason)")  # fmt: skip
    parser.add_argument("--latency-samples", type=int, default=200, help="single-row predictions timed")
    return parser


def failure_file_from(argv: Sequence[str]) -> Path:
    """The --failure-file argument, read before full parsing so that argument errors are reported too."""
    pre = argparse.ArgumentParser(add_help=False)
    pre.add_argument("--failure-file", type=Path, default=Path(DEFAULT_FAILURE_FILE))
    known, _ = pre.parse_known_args(list(argv))
    return Path(known.failure_file)


def run_processing(parser: argparse.ArgumentParser, job: Callable[[Any], None], argv: Sequence[str] | None) -> int:
    args_list = list(sys.argv[1:] if argv is None else argv)

    def main() -> None:
        args = parser.parse_args(args_list)
        if args.latency_samples < 1:
            raise JobFailure("Invalid arguments: --latency-samples must be at least 1.")
        job(args)

    return run_job(main, failure_file_from(args_list))
