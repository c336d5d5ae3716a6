"""The one module that touches the output folder: atomic replacement and drift checks."""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Mapping
from pathlib import Path

from obsbundle.errors import InputError, Problem

MARKER = ".obsbundle"
_MARKER_TEXT = b"This folder is written by obsbundle's generate.py and replaced as a whole.\n"


def write_tree(files: Mapping[str, bytes], out: Path) -> None:
    """Replace `out` with exactly `files` (relative POSIX paths → bytes), or leave it untouched.

    Everything is written to a sibling temporary folder first; only a complete tree is swapped in,
    so a crash or an error mid-way never leaves a half-written output.
    """
    _refuse_foreign_folder(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{out.name}.new-", dir=out.parent))
    try:
        for relative, data in files.items():
            target = staging / relative
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(data)
        (staging / MARKER).write_bytes(_MARKER_TEXT)
        _swap_in(staging, out)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise


def stale_files(files: Mapping[str, bytes], out: Path) -> list[str]:
    """Paths under `out` that differ from `files`: changed, missing, or no longer generated."""
    present = {
        path.relative_to(out).as_posix()
        for path in out.rglob("*")
        if path.is_file() and path.name != MARKER
    } if out.is_dir() else set()
    stale = [path for path in files if path not in present or (out / path).read_bytes() != files[path]]
    stale.extend(path for path in present if path not in files)
    return sorted(stale)


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
