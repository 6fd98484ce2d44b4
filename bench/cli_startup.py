"""Start-up time of the `mailfilter` command: `mailfilter --help` and `mailfilter explain --help`.

Usage: .venv/bin/python bench/cli_startup.py [--runs 15] [--command PATH]
Each run is a fresh process (the installed console script next to this Python,
else `python -m mailfilter_cli.main`), in an empty directory, with no AWS or
mailfilter settings in its environment; wall time from start to exit. Runs of
the two commands are interleaved, after one untimed warm-up each (bytecode
caches warm, as after installation). Prints median and min-max per command
against the 0.5 s target, and exits 1 if a median misses it.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

TARGET_SECONDS = 0.5
COMMANDS = (["--help"], ["explain", "--help"])


def mailfilter_command(explicit: str | None) -> list[str]:
    if explicit:
        return [explicit]
    script = Path(sys.executable).parent / "mailfilter"
    if script.is_file():
        return [str(script)]
    found = shutil.which("mailfilter")
    return [found] if found else [sys.executable, "-m", "mailfilter_cli.main"]


def clean_environment() -> dict[str, str]:
    """The caller's environment without AWS, mailfilter or table settings: --help must need none."""
    dropped = ("AWS_", "MAILFILTER_", "DIRECTORY_", "DECISIONS_", "MAIL_", "QUARANTINE_", "FILTER_", "VENDOR_", "IDEMPOTENCY_")
    return {name: value for name, value in os.environ.items() if not name.startswith(dropped)}


def run_once(command: list[str], cwd: str, env: dict[str, str]) -> float:
    start = time.perf_counter()
    done = subprocess.run(command, cwd=cwd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, check=False)
    elapsed = time.perf_counter() - start
    if done.returncode != 0:
        raise SystemExit(f"{' '.join(command)} exited {done.returncode}: {done.stderr.decode(errors='replace')}")
    return elapsed


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=15, help="timed runs per command (default 15)")
    parser.add_argument("--command", help="the mailfilter executable (default: the one installed beside this Python)")
    args = parser.parse_args()
    base = mailfilter_command(args.command)
    env = clean_environment()
    times: dict[str, list[float]] = {" ".join(["mailfilter", *c]): [] for c in COMMANDS}
    with tempfile.TemporaryDirectory(prefix="mailfilter-startup-") as cwd:
        for arguments in COMMANDS:
            run_once([*base, *arguments], cwd, env)  # warm-up: bytecode caches
        for _ in range(args.runs):
            for arguments in COMMANDS:
                times[" ".join(["mailfilter", *arguments])].append(run_once([*base, *arguments], cwd, env))
    print(f"{' '.join(base)}: {args.runs} fresh processes per command, interleaved; target: median under {TARGET_SECONDS} s")
    missed = False
    for name, samples in times.items():
        median = statistics.median(samples)
        verdict = "ok" if median < TARGET_SECONDS else "MISSED"
        missed |= median >= TARGET_SECONDS
        print(f"  {name:<26} median {median:.3f} s  (min {min(samples):.3f}, max {max(samples):.3f})  {verdict}")
    return 1 if missed else 0


if __name__ == "__main__":
    sys.exit(main())
