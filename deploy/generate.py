"""Copy config/*.yml into deploy/base/config/, where kustomize's configMapGenerator reads them.

    python deploy/generate.py           # (re)write the copies
    python deploy/generate.py --check   # exit 1 when they are out of date

kustomize refuses files above a kustomization's directory (and links that
lead there), so the ConfigMap feedguard-config is generated from committed
copies; tests/test_deploy_k8s.py fails while they differ from config/.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from feedguard.core.generated import write_or_check

REPO = Path(__file__).resolve().parent.parent
SOURCE = REPO / "config"
TARGET = REPO / "deploy" / "base" / "config"
FILES = ("exporter.yml", "responder.yml", "external_providers.yml")


def header(name: str) -> str:
    return (
        f"# GENERATED copy of config/{name} by deploy/generate.py for the ConfigMap\n"
        "# feedguard-config: edit config/ and regenerate. Kubernetes-specific settings\n"
        "# are environment variables of the Deployments (deploy/base/*.yaml).\n"
    )


def body(name: str) -> str:
    # The editor modeline points at config/schema/, which is not beside the copies.
    lines = (SOURCE / name).read_text().splitlines(keepends=True)
    return "".join(line for line in lines if not line.startswith("# yaml-language-server:"))


def outputs() -> dict[Path, str]:
    return {TARGET / name: header(name) + body(name) for name in FILES}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--check", action="store_true", help="fail when files are out of date")
    args = parser.parse_args(argv)
    return write_or_check(
        outputs(), check=args.check, command="python deploy/generate.py", base=REPO
    )


if __name__ == "__main__":
    sys.exit(main())
