"""The one module that touches the output folder: atomic replacement and drift checks.

A new output is written into a staging folder beside `out` (by this process or by generation
workers, through `write_file`) and swapped in whole; a crash or an error mid-way never leaves a
half-written output.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Mapping
from enum import StrEnum
from pathlib import Path
from types import TracebackType

from obsbundle.errors import InputError, Problem

MARKER = ".obsbundle"
_MARKER_TEXT = b"This folder is written by obsbundle's generate.py and replaced as a whole.\n"


class Staging:
    """A new output tree for `out`, written beside it and swapped in by `commit`.

    Used as a context manager, it removes itself when the block ends without a commit.
    """

    def __init__(self, out: Path) -> None:
        _refuse_foreign_folder(out)
        out.parent.mkdir(parents=True, exist_ok=True)
        self.out = out
        self.path = Path(tempfile.mkdtemp(prefix=f".{out.name}.new-", dir=out.parent))
        self._committed = False

    def __enter__(self) -> Staging:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, trace: TracebackType | None
    ) -> None:
        if not self._committed:
            shutil.rmtree(self.path, ignore_errors=True)

    def write(self, relative: str, data: bytes) -> None:
        write_file(self.path, relative, data)

    def commit(self) -> None:
        """Replace `out` with the staged tree."""
        (self.path / MARKER).write_bytes(_MARKER_TEXT)
        _swap_in(self.path, self.out)
        self._committed = True


def write_file(staging: Path, relative: str, data: bytes) -> None:
    """One file of a staged tree (`relative` is a POSIX path below it)."""
    target = staging / relative
    try:
        target.write_bytes(data)
    except FileNotFoundError:  # the first file of its folder
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(data)


def write_tree(files: Mapping[str, bytes], out: Path) -> None:
    """Replace `out` with exactly `files` (relative POSIX paths → bytes), or leave it untouched."""
    with Staging(out) as staging:
        for relative, data in files.items():
            staging.write(relative, data)
        staging.commit()


class Drift(StrEnum):
    """How a file of the output folder differs from what generation writes."""

    STALE = "stale"
    """It is there with other bytes."""
    MISSING = "missing"
    """It would be written and is not there."""
    EXTRA = "extra"
    """It is there and no longer generated."""


def drift(out: Path, relative: str, data: bytes) -> Drift | None:
    """How `out/relative` differs from `data`: STALE, MISSING, or None when it holds those bytes."""
    try:
        return None if (out / relative).read_bytes() == data else Drift.STALE
    except (FileNotFoundError, NotADirectoryError, IsADirectoryError):
        return Drift.MISSING


def present_files(out: Path) -> set[str]:
    """Relative paths of the files under `out`, the marker aside."""
    if not out.is_dir():
        return set()
    return {path.relative_to(out).as_posix() for path in out.rglob("*") if path.is_file() and path.name != MARKER}


def _swap_in(staging: Path, out: Path) -> None:
    if not out.exists():
        os.replace(staging, out)
        return
    retired = Path(tempfile.mkdtemp(prefix=f".{out.name}.old-", dir=out.parent))
    os.rmdir(retired)
    os.replace(out, retired)
    try:
        os.replace(staging, out)
    except BaseException:
        os.replace(retired, out)
        raise
    shutil.rmtree(retired, ignore_errors=True)


def _refuse_foreign_folder(out: Path) -> None:
    """Never replace a folder obsbundle did not write (say, `--out .` by mistake)."""
    if out.exists() and (not out.is_dir() or (any(out.iterdir()) and not (out / MARKER).is_file())):
        raise InputError(
            [
                Problem(
                    str(out),
                    (),
                    "exists and was not written by obsbundle, so it will not be replaced: "
                    "choose an empty or new --out folder",
                )
            ]
        )
