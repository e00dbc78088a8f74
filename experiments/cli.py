"""What every `python -m experiments` command shares for a user's mistake: one line on stderr,
`error: ...`, naming the problem and the fix, exit status 2 (a traceback means a bug). `Parser` is
argparse with that one-line usage error; `whole` and `choice` are argument types that say what to give."""
from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path


def error(message) -> int:
    """Print `error: message` as one line on stderr; returns the exit status 2."""
    print("error: " + " ".join(str(message).split()), file=sys.stderr)
    return 2


class Parser(argparse.ArgumentParser):
    """argparse with a usage error on one line: `error: ... (see PROG --help)`, exit status 2."""

    def error(self, message):
        self.exit(2, f"error: {' '.join(message.split())} (see {self.prog} --help)\n")


def whole(low: int = 1):
    """An argument type: a whole number >= `low`."""
    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not a whole number; give one >= {low}") from None
        if value < low:
            raise argparse.ArgumentTypeError(f"{value}: give a whole number >= {low}")
        return value

    parse.__name__ = "whole number"
    return parse


def choice(what: str, options, plural: str | None = None):
    """An argument type: one of `options`, refused with a did-you-mean."""
    from zoo.registry import unknown_key_error

    def parse(text: str) -> str:
        if text not in options:
            raise argparse.ArgumentTypeError(str(unknown_key_error(what, text, list(options), plural=plural)))
        return text

    parse.__name__ = what
    return parse


def out_folder(text: str) -> str:
    """An argument type: a folder for the runs' outputs, made later; refused (nothing created) when it
    is a file, sits under a file, or cannot be written."""
    path = Path(text).expanduser()
    if path.exists() and not path.is_dir():
        raise argparse.ArgumentTypeError(f"{path} is a file; give a folder for the runs' weights, samples "
                                         f"and logs")
    existing = path.absolute()
    while not existing.exists():
        existing = existing.parent
    if not existing.is_dir():
        raise argparse.ArgumentTypeError(f"{existing} is a file, so no folder can be made under it; "
                                         f"give another --out")
    if not os.access(existing, os.W_OK | os.X_OK):
        raise argparse.ArgumentTypeError(f"{existing} is not writable; give a folder you can write to")
    return text
