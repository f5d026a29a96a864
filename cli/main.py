"""Entry point of the `lepton` command."""

from __future__ import annotations

import argparse
import logging
import sys

from cli import demo, jobs_code, local


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="lepton", description="Lepton Lifecycle: models from data to retirement.")
    parser.add_argument("-v", "--verbose", action="store_true", help="log what the local runtime does")
    subparsers = parser.add_subparsers(dest="command", required=True)
    local.register(subparsers)
    demo.register(subparsers)
    jobs_code.register(subparsers)
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.INFO if args.verbose else logging.WARNING, format="%(levelname)s %(name)s: %(message)s"
    )
    return int(args.func(args) or 0)


if __name__ == "__main__":
    sys.exit(main())
