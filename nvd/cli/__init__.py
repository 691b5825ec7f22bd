"""The ``nvd`` console script: one subcommand per pipeline stage, usable without Snakemake.

One module per family registers its subcommands (``data``, ``hashing_nvd``, ``hypernvd``);
options come from the components' config dataclasses (``nvd.cli.common``).
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence

from nvd.cli import data, hashing_nvd, hypernvd
from nvd.core.errors import NvdError


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="nvd", description=__doc__.split("\n")[0])
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def command(name: str, fn: Callable[[argparse.Namespace], None], help: str) -> argparse.ArgumentParser:
        p = sub.add_parser(name, help=help, description=help)
        p.set_defaults(func=fn)
        return p

    data.register(command)
    hashing_nvd.register(command)
    hypernvd.register(command)
    data.register_tools(command)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    from nvd.core.progress import configure_logging

    args = build_parser().parse_args(argv)
    configure_logging()
    try:
        args.func(args)
    except NvdError as exc:
        print(f"nvd {args.command}: error: {exc}", file=sys.stderr)
        return 1
    return 0
