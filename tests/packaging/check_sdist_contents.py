"""Checks that an sdist holds exactly the files git tracks (less those left out on purpose) plus PKG-INFO.

usage: python tests/packaging/check_sdist_contents.py SDIST REPO

A tracked file that is missing would break a build from the sdist; an untracked one (a build tree, a
cache, a local scratch file) would ship to every user. Exits non-zero and names the files otherwise.
"""

from __future__ import annotations

import subprocess
import sys
import tarfile
from pathlib import Path, PurePosixPath

# Tracked but not shipped: the CI script (pyproject.toml's sdist.exclude says the same).
NOT_SHIPPED = (".ci/",)
# Never in an sdist, whatever git says.
FORBIDDEN_PARTS = {"build", "dist", "__pycache__", ".pytest_cache", ".ruff_cache", ".mypy_cache", ".git"}
FORBIDDEN_SUFFIXES = {".so", ".pyd", ".pyc", ".o", ".a", ".whl"}


def sdist_files(sdist: Path) -> set[str]:
    """Paths of the regular files in the archive, relative to its single top directory."""
    with tarfile.open(sdist) as archive:
        members = [member for member in archive.getmembers() if member.isfile()]
    tops = {PurePosixPath(member.name).parts[0] for member in members}
    if len(tops) != 1:
        sys.exit(f"{sdist}: expected one top directory, found {sorted(tops)}")
    return {str(PurePosixPath(*PurePosixPath(member.name).parts[1:])) for member in members}


def tracked_files(repo: Path) -> set[str]:
    listing = subprocess.run(["git", "ls-files", "-z"], cwd=repo, check=True, capture_output=True, text=True).stdout
    return {path for path in listing.split("\0") if path and (repo / path).is_file()}


def main() -> int:
    if len(sys.argv) != 3:
        sys.exit(__doc__)
    sdist, repo = Path(sys.argv[1]), Path(sys.argv[2])
    shipped = sdist_files(sdist)
    expected = {path for path in tracked_files(repo) if not path.startswith(NOT_SHIPPED)} | {"PKG-INFO"}

    problems = [f"missing from the sdist: {path}" for path in sorted(expected - shipped)]
    problems += [f"in the sdist but not tracked by git: {path}" for path in sorted(shipped - expected)]
    for path in sorted(shipped):
        pure = PurePosixPath(path)
        if FORBIDDEN_PARTS.intersection(pure.parts[:-1]) or pure.suffix in FORBIDDEN_SUFFIXES:
            problems.append(f"build output or cache in the sdist: {path}")
    for problem in problems:
        print(problem, file=sys.stderr)
    if problems:
        return 1
    print(f"{sdist.name}: {len(shipped)} files, as tracked by git")
    return 0


if __name__ == "__main__":
    sys.exit(main())
