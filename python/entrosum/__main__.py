"""Command line: ``python -m entrosum demo``."""

from __future__ import annotations

import argparse
import sys


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m entrosum", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    demo = commands.add_parser("demo", help="fit every model on generated data and compare ELBO and entropy sum")
    demo.add_argument("--report", action="store_true", help="also print each model's monitor report")
    demo.add_argument("--plot", metavar="FILE", help="save sparse coding's atoms and monitor plot to FILE (matplotlib)")
    args = parser.parse_args(argv)
    if args.command == "demo":
        from .demo import run

        rows = run(print_reports=args.report, plot=args.plot)
        return 0 if all(row["agree"] for row in rows) else 1
    return 2


if __name__ == "__main__":
    sys.exit(main())
