"""Size of what `sam build` made: the MailFilterLayer and each function's artifact.

Usage: make build && .venv/bin/python bench/artifact_size.py [--build-dir .aws-sam/build]
Prints each artifact's unzipped size and its size as the zip SAM uploads (deflate);
target: the layer under 1 MB unzipped. Exits 1 if the layer is over the target.
"""

from __future__ import annotations

import argparse
import io
import sys
import zipfile
from pathlib import Path

LAYER = "MailFilterLayer"
LAYER_TARGET_BYTES = 1024 * 1024


def files(directory: Path) -> list[Path]:
    return sorted(p for p in directory.rglob("*") if p.is_file())


def zipped_size(directory: Path) -> int:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        for path in files(directory):
            archive.write(path, path.relative_to(directory))
    return buffer.tell()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--build-dir", type=Path, default=Path(__file__).resolve().parent.parent / ".aws-sam" / "build")
    args = parser.parse_args()
    artifacts = sorted(d for d in args.build_dir.iterdir() if d.is_dir()) if args.build_dir.is_dir() else []
    if not artifacts:
        print(f"nothing built in {args.build_dir}: run `make build` first", file=sys.stderr)
        return 2
    print(f"{'artifact':<26} {'files':>6} {'unzipped':>12} {'zipped':>12}")
    layer_size = None
    for artifact in artifacts:
        size = sum(p.stat().st_size for p in files(artifact))
        print(f"{artifact.name:<26} {len(files(artifact)):>6} {size:>12,} {zipped_size(artifact):>12,}")
        if artifact.name == LAYER:
            layer_size = size
    if layer_size is None:
        print(f"{LAYER} was not built", file=sys.stderr)
        return 2
    verdict = "met" if layer_size < LAYER_TARGET_BYTES else "NOT met"
    print(f"\nlayer {layer_size / 1024:.0f} KiB unzipped; target < {LAYER_TARGET_BYTES // 1024} KiB: {verdict}")
    return 0 if layer_size < LAYER_TARGET_BYTES else 1


if __name__ == "__main__":
    sys.exit(main())
