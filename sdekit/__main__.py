"""Command line: `sdekit convergence ...` (also `python -m sdekit convergence ...`)."""

import argparse
import sys

from .convergence._cli import add_convergence_parser


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="sdekit", description="sdekit command line tools.")
    subparsers = parser.add_subparsers(dest="command", required=True)
    add_convergence_parser(subparsers)
    args = parser.parse_args(argv)
    return args.run(args)


if __name__ == "__main__":
    sys.exit(main())
