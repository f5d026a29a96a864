"""A toy processing script, a fixture of localcloud's SageMaker tests: every path comes as an argument."""

import argparse
import json
import os
import sys
from pathlib import Path


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--input-dir", required=True)
    parser.add_argument("--output-dir", required=True)
    parser.add_argument("--message-file", default="/opt/ml/output/message")
    parser.add_argument("--fail", action="store_true")
    args = parser.parse_args()

    files = sorted(p for p in Path(args.input_dir).rglob("*") if p.is_file())
    if args.fail:
        Path(args.message_file).write_text(f"Evaluation failed: {len(files)} input files but no model was given")
        sys.exit(3)
    total = sum(len(p.read_bytes()) for p in files)
    out = Path(args.output_dir)
    (out / "nested").mkdir(parents=True, exist_ok=True)
    (out / "summary.json").write_text(
        json.dumps({"files": [p.name for p in files], "bytes": total, "mode": os.environ.get("TOY_MODE")})
    )
    (out / "nested" / "marker.txt").write_text("ok")
    print(f"processed={len(files)}")


if __name__ == "__main__":
    main()
