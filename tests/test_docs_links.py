"""Every relative link in the README and docs/ resolves to a file inside the repository."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
LINK = re.compile(r"\]\(([^)\s]+)\)")


def documents() -> list[Path]:
    return [ROOT / "README.md", *sorted((ROOT / "docs").rglob("*.md"))]


def test_relative_links_resolve_inside_the_repository() -> None:
    dead = []
    for doc in documents():
        for target in LINK.findall(doc.read_text()):
            if re.match(r"^[a-z]+:", target) or target.startswith("#"):
                continue  # a URL or an anchor in the same page
            path = (doc.parent / target.split("#", 1)[0]).resolve()
            if not path.is_relative_to(ROOT) or not path.exists():
                dead.append(f"{doc.relative_to(ROOT)}: {target}")
    assert dead == []


def test_files_the_runbook_names_exist() -> None:
    text = (ROOT / "docs" / "runbook.md").read_text()
    for named in ("runbooks/external-provider-contacts.md", "postmortems/external-outage.md"):
        assert f"]({named})" in text
        assert (ROOT / "docs" / named).is_file()
