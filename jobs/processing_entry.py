"""Entry point of Lepton's processing jobs: installs what the image lacks, then runs the job script.

    python3 /opt/ml/processing/input/code/processing_entry.py evaluate.py --model-dir ... --test-dir ...

Training jobs get requirements.txt installed by the SageMaker training toolkit; processing jobs
run their ContainerEntrypoint as is (the SDK's FrameworkProcessor adds the same install step). A
module the image already has is not installed again, so an image with everything (or the local
runtime) starts the script at once."""

from __future__ import annotations

import importlib.util
import runpy
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
MODULES = {"pandas": "pandas", "pyarrow": "pyarrow", "sklearn": "scikit-learn", "matplotlib": "matplotlib",
           "pydantic": "pydantic"}  # fmt: skip


def missing_modules() -> list[str]:
    return [name for name in MODULES if importlib.util.find_spec(name) is None]


def main(argv: list[str]) -> int:
    if not argv or not argv[0].endswith(".py"):
        print("usage: processing_entry.py <script.py> [arguments...]", file=sys.stderr)
        return 2
    script = HERE / argv[0]
    if not script.is_file():
        print(f"no job script {argv[0]} beside {HERE}", file=sys.stderr)
        return 2
    missing = missing_modules()
    if missing:
        print(f"installing {', '.join(missing)} from requirements.txt", flush=True)
        subprocess.run([sys.executable, "-m", "pip", "install", "-q", "-r", str(HERE / "requirements.txt")], check=True)
    sys.path.insert(0, str(HERE))
    sys.argv = [str(script), *argv[1:]]
    try:
        runpy.run_path(str(script), run_name="__main__")
    except SystemExit as exit_:
        return int(exit_.code or 0) if not isinstance(exit_.code, str) else 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
