"""The house: one installed name, two sibling services on one core, a light record client."""

from __future__ import annotations

import ast
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
PACKAGES = {"core": REPO / "feedguard" / "core", "exporter": REPO / "exporter"}
PACKAGES["responder"] = REPO / "responder"


def _imported_modules(folder: Path) -> dict[str, set[str]]:
    """{file: absolute module names it imports}, relative imports left out (they stay inside)."""
    found: dict[str, set[str]] = {}
    for path in sorted(folder.rglob("*.py")):
        names: set[str] = set()
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Import):
                names.update(alias.name for alias in node.names)
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names.add(node.module)
        found[str(path.relative_to(REPO))] = names
    return found


@pytest.mark.parametrize(
    ("package", "forbidden"),
    [
        ("exporter", ("feedguard.responder",)),
        ("responder", ("feedguard.exporter",)),
        ("core", ("feedguard.exporter", "feedguard.responder")),
    ],
)
def test_siblings_never_import_each_other(package: str, forbidden: tuple[str, ...]) -> None:
    offending = {
        path: sorted(name for name in names if name.startswith(forbidden))
        for path, names in _imported_modules(PACKAGES[package]).items()
    }
    assert {path: names for path, names in offending.items() if names} == {}


def test_no_module_uses_the_old_top_level_names() -> None:
    offending = []
    for folder in [*PACKAGES.values(), REPO / "tests", REPO / "bench"]:
        for path, names in _imported_modules(folder).items():
            offending += [
                f"{path}: {name}"
                for name in names
                if name.split(".")[0] in ("exporter", "responder", "core")
            ]
    assert offending == []


def test_the_links_give_the_services_their_installed_names() -> None:
    assert (REPO / "feedguard" / "exporter").resolve() == PACKAGES["exporter"]
    assert (REPO / "feedguard" / "responder").resolve() == PACKAGES["responder"]
    import feedguard.exporter.app
    import feedguard.responder.app

    # One name per file: the modules load through the links, never as bare "exporter".
    assert "exporter" not in sys.modules
    assert "responder" not in sys.modules
    assert feedguard.exporter.app.__name__ == "feedguard.exporter.app"
    assert feedguard.responder.app.__name__ == "feedguard.responder.app"


def test_recording_a_success_needs_none_of_the_service_stacks() -> None:
    # A fresh interpreter: what importing the pipeline API and parsing the CLI pulls in.
    code = (
        "import sys\n"
        "import feedguard.core.record\n"
        "from feedguard.exporter.__main__ import _parser\n"
        "_parser()\n"
        "heavy = {'aiohttp', 'kubernetes', 'slack_sdk', 'jinja2', 'prometheus_client'}\n"
        "print(sorted(heavy & {name.split('.')[0] for name in sys.modules}))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=REPO
    )
    assert out.stdout.strip() == "[]"


@pytest.mark.slow
def test_the_wheel_installs_only_the_feedguard_name(tmp_path: Path) -> None:
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "--quiet",
            "--no-deps",
            "--no-build-isolation",
            "--wheel-dir",
            str(tmp_path),
            str(REPO),
        ],
        check=True,
        capture_output=True,
    )
    (wheel,) = tmp_path.glob("feedguard-*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    assert {name.split("/")[0] for name in names if not name.endswith(".dist-info/")} == {
        "feedguard",
        wheel.name.split("-")[0] + "-" + wheel.name.split("-")[1] + ".dist-info",
    }
    # The services and their package data are in, under their installed names.
    for member in (
        "feedguard/core/record.py",
        "feedguard/exporter/app.py",
        "feedguard/responder/app.py",
        "feedguard/responder/notes/templates/initial.j2",
    ):
        assert member in names
    entry_points = zipfile.ZipFile(wheel).read(
        next(name for name in names if name.endswith("entry_points.txt"))
    )
    assert b"feedguard-exporter = feedguard.exporter.__main__:main" in entry_points
