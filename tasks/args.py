"""Command-line parsing whose errors are one line and exit status 2, like every edgeflow error."""

from __future__ import annotations

import argparse
from typing import NoReturn

__all__ = ["OneLineArgumentParser"]


class OneLineArgumentParser(argparse.ArgumentParser):
    """An ``ArgumentParser`` that reports a bad command line as one line on stderr and exits 2:
    ``<prog>: bad argument: <message> (see <prog> --help)`` instead of argparse's usage block."""

    def error(self, message: str) -> NoReturn:
        """Print ``message`` as one line and exit with status 2 (argparse's status for bad arguments)."""
        self.exit(2, f"{self.prog}: bad argument: {message} (see {self.prog} --help)\n")
