"""A toy script-mode trainer, a fixture of localcloud's SageMaker tests (it stands in for jobs/train.py).

It reads its channels, prints metrics as `name=value`, writes SM_MODEL_DIR and SM_OUTPUT_DATA_DIR,
and fails on request the way the container contract says a job fails: a reason in
/opt/ml/output/failure and a non-zero exit.
"""

import argparse
import json
import math
import os
import sys
import time
from pathlib import Path


def fail(reason: str) -> None:
    failure = Path(os.environ["SM_OUTPUT_DIR"]) / "failure"
    failure.write_text(reason)
    print(reason, file=sys.stderr)
    sys.exit(2)


class Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # unknown or malformed hyperparameters
        fail(f"Bad hyperparameters: {message}")


def main() -> None:
    parser = Parser()
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--learning_rate", type=float, default=0.01)
    parser.add_argument("-x", "--x", type=float, default=0.0)  # the toolkit passes one-letter names as -x
    parser.add_argument("--optimizer", default="adam")
    parser.add_argument("--channels", default="train")
    parser.add_argument("--mode", default="ok", choices=["ok", "nan", "crash", "sleep", "slow_epochs"])
    parser.add_argument("--sleep", type=float, default=0.0)
    args = parser.parse_args()

    if args.learning_rate <= 0:
        fail(f"Bad hyperparameter learning_rate: it must be > 0, got {args.learning_rate}")

    rows = 0
    for channel in args.channels.split(","):
        directory = os.environ.get(f"SM_CHANNEL_{channel.upper()}")
        if directory is None or not Path(directory).is_dir():
            fail(f"Missing channel '{channel}': the job needs it (SM_CHANNELS is {os.environ['SM_CHANNELS']})")
        for path in sorted(Path(directory).rglob("*.csv")):
            rows += len([line for line in path.read_text().splitlines() if line.strip()])
    print(f"rows={rows}")

    if args.mode == "crash":
        raise RuntimeError("the toy trainer crashed on purpose")
    if args.mode == "sleep":
        print("sleeping", flush=True)
        time.sleep(args.sleep)

    loss = 1.0
    for epoch in range(1, args.epochs + 1):
        if args.mode == "nan":
            print(f"epoch={epoch}")
            print("train:loss=nan")
            fail(f"Training diverged: train:loss is NaN at epoch {epoch}; lower learning_rate ({args.learning_rate})")
        # The objective the tuning tests search: smallest at x=0.3, learning_rate=0.01, optimizer adam.
        base = (args.x - 0.3) ** 2 + 0.1 * (math.log10(args.learning_rate) + 2) ** 2
        base += 0.05 if args.optimizer == "sgd" else 0.0
        loss = base + 1.0 / epoch
        print(f"epoch={epoch}")
        print(f"train:loss={loss + 0.01:.6f}")
        print(f"validation:loss={loss:.6f}")
        if args.mode == "slow_epochs":
            time.sleep(args.sleep)
    print(f"validation:accuracy={1.0 / (1.0 + loss):.6f}")

    model_dir = Path(os.environ["SM_MODEL_DIR"])
    env = {k: v for k, v in os.environ.items() if k.startswith("SM_") or k.startswith("TRAINING_JOB")}
    channels = {
        name: sorted(p.relative_to(path).as_posix() for p in Path(path).rglob("*") if p.is_file())
        for name, path in ((c, os.environ[f"SM_CHANNEL_{c.upper()}"]) for c in json.loads(os.environ["SM_CHANNELS"]))
    }
    hyperparameters = json.loads((Path(os.environ["SM_INPUT_CONFIG_DIR"]) / "hyperparameters.json").read_text())
    record = {"argv": sys.argv[1:], "loss": loss, "env": env, "channels": channels, "hyperparameters": hyperparameters}
    (model_dir / "model.json").write_text(json.dumps(record))
    (Path(os.environ["SM_OUTPUT_DATA_DIR"]) / "report.txt").write_text(f"rows={rows}\n")
    print("done")


if __name__ == "__main__":
    main()
