"""Small readers of a file's first lines, for engines that do not sniff CSV themselves."""

from __future__ import annotations

import csv
import gzip
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import IO

from ..errors import InputError

__all__ = ["header_cells", "open_text", "sniff_delimiter"]

_CANDIDATES = (",", ";", "\t", "|")


def open_text(path: Path, encoding: str) -> IO[str]:
    """Open a CSV file (gzip-compressed if it ends in .gz) as text."""
    if path.name.lower().endswith(".gz"):
        return gzip.open(path, "rt", encoding=encoding, newline="")
    return path.open("r", encoding=encoding, newline="")


def _head(path: Path, encoding: str, lines: int = 50) -> list[str]:
    try:
        with open_text(path, encoding) as fh:
            out = []
            for _, line in zip(range(lines), fh, strict=False):
                out.append(line)
            return out
    except (OSError, EOFError, UnicodeDecodeError, LookupError) as exc:
        raise InputError(
            f"Cannot read {path}: {exc}. Check the file is complete and pass --encoding "
            "with its real encoding."
        ) from None


def sniff_delimiter(path: Path, encoding: str) -> str:
    """The delimiter that splits the first lines into the same number (> 1) of cells.

    Falls back to ``","``; the single-column check in :mod:`custseg.load` then asks for
    ``--delimiter``.
    """
    lines = [line for line in _head(path, encoding) if line.strip()]
    best, best_cells = ",", 1
    for sep in _CANDIDATES:
        counts = {len(row) for row in csv.reader(lines, delimiter=sep)}
        if len(counts) == 1:
            cells = counts.pop()
            if cells > best_cells:
                best, best_cells = sep, cells
    return best


def header_cells(path: Path, encoding: str, delimiter: str) -> list[str]:
    """The header row's cells (a UTF-8 byte order mark removed)."""
    lines = _head(path, encoding, lines=1)
    if not lines:
        return []
    return next(csv.reader([lines[0].lstrip("\ufeff")], delimiter=delimiter), [])


def iter_bytes(path: Path, encoding: str, chunk: int = 1 << 20) -> Iterator[bytes]:
    """The file's text re-encoded as UTF-8, in chunks (gzip decompressed)."""
    try:
        with open_text(path, encoding) as fh:
            while block := fh.read(chunk):
                yield block.encode("utf-8")
    except (OSError, EOFError, UnicodeDecodeError, LookupError) as exc:
        hint = (
            "Pass --encoding latin-1 (or the file's real encoding)."
            if isinstance(exc, UnicodeDecodeError)
            else "Check that the file is complete and the --encoding name."
        )
        raise InputError(f"Cannot read {path}: {str(exc)[:200]}. {hint}") from None


def group_by_header(
    paths: Sequence[Path], encoding: str, delimiter: str
) -> dict[tuple[str, ...], list[Path]]:
    """Files grouped by their header row, in first-seen order."""
    groups: dict[tuple[str, ...], list[Path]] = {}
    for p in paths:
        groups.setdefault(tuple(header_cells(p, encoding, delimiter)), []).append(p)
    return groups
