"""Command line: `sdekit convergence ...`, `sdekit fit ...` (also `python -m sdekit ...`) and `sdekit --version`."""

import argparse
import sys

import sdekit as sk

from .convergence import add_convergence_parser
from .neural import add_fit_parser


class OneLineErrorParser(argparse.ArgumentParser):
    """An argument parser whose usage errors are one line on stderr (exit status 2), pointing to
    `--help` instead of printing the usage; subcommand parsers inherit the class."""

    def error(self, message: str):
        self.exit(2, f"{self.prog}: error: {message} (see '{self.prog} --help')\n")


def main(argv: list[str] | None = None) -> int:
    """Parse `argv` (default: the process arguments) and run the chosen subcommand."""
    parser = OneLineErrorParser(prog="sdekit", description="sdekit command line tools.")
    parser.add_argument("--version", action="version", version=f"%(prog)s {sk.__version__}")
    subparsers = parser.add_subparsers(dest="command", required=True)
    add_convergence_parser(subparsers)
    add_fit_parser(subparsers)
    args = parser.parse_args(argv)
    return args.run(args)


if __name__ == "__main__":
    sys.exit(main())
