"""Collecting the reasons an upload is refused (or warnings about what cleaning changed)."""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import numpy as np
import numpy.typing as npt

from lepton.data.models import MAX_LISTED_ROWS, Problem

MAX_SAMPLE_VALUES = 3
MAX_SAMPLE_CHARS = 40


def sample_values(values: Iterable[object]) -> str:
    """A short, safe rendering of a few offending values for a message: repr-quoted and truncated."""
    shown = []
    for value in values:
        text = repr(value)
        if len(text) > MAX_SAMPLE_CHARS:
            text = text[: MAX_SAMPLE_CHARS - 3] + "..."
        shown.append(text)
        if len(shown) == MAX_SAMPLE_VALUES:
            break
    return ", ".join(shown)


class ProblemLog:
    """An ordered list of problems. Row lists are capped at MAX_LISTED_ROWS with the total kept."""

    def __init__(self) -> None:
        self._problems: list[Problem] = []

    def __bool__(self) -> bool:
        return bool(self._problems)

    def __len__(self) -> int:
        return len(self._problems)

    @property
    def problems(self) -> list[Problem]:
        return list(self._problems)

    @property
    def codes(self) -> list[str]:
        return sorted({p.code for p in self._problems})

    def add(self, code: str, message: str, column: str | None = None) -> None:
        self._problems.append(Problem(code=code, message=message, column=column))

    def add_rows(
        self, code: str, message: str, rows: Sequence[int] | npt.NDArray[np.int64], column: str | None = None
    ) -> None:
        """Record a problem affecting `rows` (1-based data row numbers, any order)."""
        ordered = np.unique(np.asarray(rows, dtype=np.int64))
        self._problems.append(
            Problem(
                code=code,
                message=message,
                column=column,
                rows=[int(r) for r in ordered[:MAX_LISTED_ROWS]],
                row_count=int(ordered.size),
            )
        )

    def extend(self, problems: Iterable[Problem]) -> None:
        self._problems.extend(problems)
