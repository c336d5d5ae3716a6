"""Input errors that reach the user as one readable message and exit code 2."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

KeyPath = tuple[str | int, ...]


def format_key_path(path: KeyPath) -> str:
    """`('services', 3, 'slos', 0, 'objective')` → `services[3].slos[0].objective`."""
    text = ""
    for part in path:
        if isinstance(part, int):
            text += f"[{part}]"
        else:
            text += f".{part}" if text else str(part)
    return text or "(top level)"


@dataclass(frozen=True)
class Problem:
    """One thing wrong with an input file: where, what, and how to fix it."""

    file: str
    path: KeyPath
    message: str

    def __str__(self) -> str:
        return f"{self.file}: {format_key_path(self.path)}: {self.message}"


class InputError(Exception):
    """Bad input (inventory, flags, files): the CLI prints it and exits 2."""

    def __init__(self, problems: Sequence[Problem]) -> None:
        self.problems = tuple(problems)
        super().__init__("\n".join(str(problem) for problem in self.problems))

    def __reduce__(self) -> tuple[type[InputError], tuple[tuple[Problem, ...]]]:
        # Raised in a worker process, it crosses back pickled: rebuild it from its problems.
        return (InputError, (self.problems,))
