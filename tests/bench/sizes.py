"""Deployment package sizes: each function's release binary zipped as `bootstrap` (what
`sam build` uploads for provided.al2023), beside the raw binary. Prints a table.

    .bed/venv/bin/python tests/bench/sizes.py [--target-dir DIR]
"""
import argparse
import os
import re
from pathlib import Path

from harness import ROOT, kib, zipped_size


def functions():
    """The binaries the template deploys (`BuildProperties: Binary:` of each function)."""
    template = (ROOT / "infra" / "template.yaml").read_text()
    return re.findall(r"BuildProperties:\s*\n\s*Binary:\s*([\w-]+)", template)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--target-dir", default=os.environ.get(
        "CARGO_TARGET_DIR", os.path.expanduser("~/.cache/mwaa-ops/target")))
    ap.add_argument("--arch", choices=["x86_64", "arm64"], default="x86_64",
                    help="arm64: what scripts/release-check builds (the template's architecture)")
    args = ap.parse_args()
    target = Path(args.target_dir)
    # cargo lambda leaves each binary as lambda/<name>/bootstrap, where sam build takes it.
    where = ((lambda name: target / "release" / name) if args.arch == "x86_64"
             else (lambda name: target / "lambda" / name / "bootstrap"))
    names = functions()
    print(f"deployment packages ({target}, {args.arch})")
    print("| function | binary | zipped |")
    print("|---|--:|--:|")
    total = 0
    for name in names:
        binary = where(name)
        if not binary.exists():
            print(f"| {name} | not built | |")
            continue
        size = zipped_size(binary, "bootstrap")
        total += size
        print(f"| {name} | {kib(binary.stat().st_size)} | {kib(size)} |")
    print(f"| all {len(names)} | | {kib(total)} |")


if __name__ == "__main__":
    main()
