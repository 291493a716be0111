"""Config load benchmark: start-up cost of reading and validating the settings.

    .venv/bin/python -m bench.config_load [--runs 21] [--against TREE]

Each service's ``load_config`` reads the shipped settings file and the catalog
it names, applies the ``FEEDGUARD_*`` variables and validates everything.  Two
figures per service, both against a baseline measured in the same run:

- warm: one ``load_config`` in a process that has imported everything, over
  ``yaml.safe_load`` of the same two files (the parsing every loader needs);
- cold: a fresh interpreter importing the config module and loading once (what
  ``check-config`` and a service's start pay), over a fresh interpreter that
  imports ``yaml`` and parses the same files.

``--against TREE`` measures another checkout of feedguard too (for example the
last commit before a change: ``git archive COMMIT | tar -x -C TREE``) and
prints this tree's times over that one's.  Figures are printed, never asserted.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
SERVICES = {
    "exporter": ("feedguard.exporter.config", "config/exporter.yml"),
    "responder": ("feedguard.responder.config", "config/responder.yml"),
}
FILES = ("config/external_providers.yml",)

# Run in a fresh interpreter with PYTHONPATH=<tree>: prints JSON timings.
_PROBE = """
import json, sys, time
t0 = time.perf_counter()
{imports}
t1 = time.perf_counter()
{work}
t2 = time.perf_counter()
warm = []
for _ in range({runs}):
    s = time.perf_counter()
    {work}
    warm.append(time.perf_counter() - s)
print(json.dumps({{"cold": t2 - t0, "import": t1 - t0, "warm": sorted(warm)[len(warm) // 2]}}))
"""


def _probe(tree: Path, imports: str, work: str, runs: int) -> dict[str, float]:
    code = _PROBE.format(imports=imports, work=work, runs=runs)
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "PYTHONPATH": str(tree)}
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, cwd=tree, env=env, check=True
    ).stdout
    result: dict[str, float] = json.loads(out)
    return result


def _commands(service: str) -> dict[str, tuple[str, str]]:
    module, settings = SERVICES[service]
    files = [settings, *FILES]
    return {
        "load": (f"from {module} import load_config", f"load_config({settings!r}, {{}})"),
        "yaml": ("import yaml", "; ".join(f"yaml.safe_load(open({f!r}).read())" for f in files)),
    }


def measure(
    trees: dict[str, Path], runs: int, starts: int
) -> dict[tuple[str, str, str], dict[str, float]]:
    """Medians per (tree, service, load|yaml); every start runs each of them once, in
    turn, so all see the same machine load (this machine is shared)."""
    samples: dict[tuple[str, str, str], list[dict[str, float]]] = {}
    for _ in range(starts):
        for service in SERVICES:
            for label, tree in trees.items():
                for kind, (imports, work) in _commands(service).items():
                    got = _probe(tree, imports, work, runs)
                    samples.setdefault((label, service, kind), []).append(got)
    return {
        key: {name: statistics.median(m[name] for m in found) for name in found[0]}
        for key, found in samples.items()
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--runs", type=int, default=21, help="warm loads per interpreter")
    parser.add_argument("--starts", type=int, default=7, help="fresh interpreters per figure")
    parser.add_argument("--against", type=Path, help="another feedguard checkout to compare")
    args = parser.parse_args(argv)
    trees = {"this tree": REPO, **({"against": args.against.resolve()} if args.against else {})}
    results = measure(trees, args.runs, args.starts)
    print("config load, medians (baseline: yaml.safe_load of the same files, same run)")
    header = (
        f"{'tree':<10} {'service':<10} {'warm ms':>8} {'yaml ms':>8} {'ratio':>6} "
        f"{'cold ms':>8} {'yaml ms':>8} {'ratio':>6} {'import ms':>9}"
    )
    print(header)
    print("-" * len(header))
    for label in trees:
        for service in SERVICES:
            load, base = results[label, service, "load"], results[label, service, "yaml"]
            print(
                f"{label:<10} {service:<10} {load['warm'] * 1e3:8.2f} {base['warm'] * 1e3:8.2f} "
                f"{load['warm'] / base['warm']:5.1f}x {load['cold'] * 1e3:8.1f} "
                f"{base['cold'] * 1e3:8.1f} {load['cold'] / base['cold']:5.1f}x "
                f"{load['import'] * 1e3:9.1f}"
            )
    if args.against:
        for service in SERVICES:
            new = results["this tree", service, "load"]
            old = results["against", service, "load"]
            print(
                f"{service}: this tree / against: warm {new['warm'] / old['warm']:.2f}x, "
                f"cold (import + load) {new['cold'] / old['cold']:.2f}x"
            )
    return 0


if __name__ == "__main__":
    sys.exit(main())
