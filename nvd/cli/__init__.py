"""The ``nvd`` console script: one subcommand per pipeline stage, usable without Snakemake.

One module per family registers its subcommands (``data``, ``hashing_nvd``, ``hypernvd``, ``nvp``, ``nerv``, ``compression``);
options come from the components' config dataclasses (``nvd.cli.common``).

A problem the user can fix (NvdError) and an OS error (disk full, permission denied, a file
where a folder should be...) end the command with one line on stderr naming the command,
the path and the cause, and exit status 1; ``--debug`` (before or after the command) shows
the traceback as well. Any other exception is a bug and shows its traceback.
"""

from __future__ import annotations

import argparse
import sys
import traceback
from collections.abc import Callable, Sequence

from nvd.cli import compression, data, hashing_nvd, hypernvd, init, nerv, nvp
from nvd.core.errors import NvdError, describe_os_error

_DEBUG_HELP = "on an error, show the traceback as well as the one-line message"


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="nvd", description=__doc__.split("\n")[0])
    parser.add_argument("--debug", action="store_true", help=_DEBUG_HELP)
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def command(name: str, fn: Callable[[argparse.Namespace], None], help: str) -> argparse.ArgumentParser:
        p = sub.add_parser(name, help=help, description=help)
        p.set_defaults(func=fn)
        # also accepted after the command; SUPPRESS keeps a --debug given before it
        p.add_argument("--debug", action="store_true", default=argparse.SUPPRESS, help=_DEBUG_HELP)
        return p

    data.register(command)
    hashing_nvd.register(command)
    hypernvd.register(command)
    nvp.register(command)
    nerv.register(command)
    compression.register(command)
    data.register_tools(command)
    init.register(command)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    from nvd.core.progress import configure_logging

    args = build_parser().parse_args(argv)
    configure_logging()
    try:
        args.func(args)
    except (NvdError, OSError) as exc:
        if args.debug:
            traceback.print_exc()
        message = describe_os_error(exc) if isinstance(exc, OSError) else str(exc)
        print(f"nvd {args.command}: error: {message}", file=sys.stderr)
        return 1
    return 0
