"""The repository's generators (rules, dashboards, schemas, deploy copies): write or check."""

from __future__ import annotations

import sys
from collections.abc import Mapping
from pathlib import Path


def write_or_check(
    files: Mapping[Path, str], *, check: bool, command: str, base: Path | None = None
) -> int:
    """Write each file whose text differs and name it; with ``check`` write nothing.

    Returns the exit status: 1 when ``check`` found a file out of date (named on
    stderr with the ``command`` that regenerates it), else 0. Paths are shown
    relative to ``base`` when given.
    """

    def shown(path: Path) -> str:
        return str(path.relative_to(base)) if base is not None else str(path)

    stale = []
    for path, text in files.items():
        if path.exists() and path.read_text(encoding="utf-8") == text:
            continue
        if check:
            stale.append(shown(path))
        else:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text, encoding="utf-8")
            print(f"wrote {shown(path)}")
    if stale:
        print(f"out of date: {', '.join(stale)}; run {command}", file=sys.stderr)
        return 1
    return 0
