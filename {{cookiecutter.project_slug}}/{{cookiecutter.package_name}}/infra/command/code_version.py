"""Which code a run runs: the git commit and branch, and the changes not committed yet, as a patch.

Git is asked about the project's folder (the one holding the package), whatever the working directory. The
patch holds the tracked files' changes against the commit, and the untracked text files under the package
(new modules, say); it applies with ``git apply`` at the repository's top. Its size is bounded: a binary
file, an untracked file over ``UNTRACKED_LIMIT`` and anything past ``PATCH_LIMIT`` are listed, not saved.
Outside a repository, or without git, the run goes on and records why there is no commit.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[2]
PATCH_LIMIT = 1_000_000  # bytes of patch saved, in all
UNTRACKED_LIMIT = 100_000  # bytes: a larger untracked file is listed, not saved
GIT_TIMEOUT = 60  # seconds; a repository on a stalled network filesystem must not stall the run
_warned: set[bytes] = set()  # the changes this process has warned about


class GitError(Exception):
    """A git command failed; the message is the first line of what it said."""


@dataclass
class CodeVersion:
    """The commit a run's code is at, and its uncommitted changes.

    Attributes:
        commit: The commit's hash; None outside a repository (``why`` says so).
        branch: The branch checked out; None on a detached HEAD.
        dirty: Whether there are uncommitted changes; None when that is not known.
        changed: The paths changed since the commit (untracked ones under the package included).
        patch: Those changes, as ``git diff`` writes them.
        left_out: ``"<path> (<why>)"`` for each change the patch does not hold.
        why: Why there is no commit.
    """

    commit: str | None = None
    branch: str | None = None
    dirty: bool | None = None
    changed: list[str] = field(default_factory=list)
    patch: bytes = b""
    left_out: list[str] = field(default_factory=list)
    why: str | None = None


def git(*args: str, cwd: Path) -> bytes:
    """What ``git <args>`` writes, run in ``cwd``; raises GitError if it fails."""
    # GIT_OPTIONAL_LOCKS=0: status must not take the index lock, which the user's own git may hold.
    env = {**os.environ, "GIT_OPTIONAL_LOCKS": "0"}
    result = subprocess.run(["git", *args], cwd=cwd, capture_output=True, timeout=GIT_TIMEOUT, env=env)
    if result.returncode != 0:
        said = result.stderr.decode(errors="replace").strip().splitlines() or [f"status {result.returncode}"]
        raise GitError(said[0].removeprefix("fatal: ").split(" (or any")[0])
    return result.stdout


def code_version(package: Path = PACKAGE) -> CodeVersion:
    """The commit, branch and uncommitted changes of the project holding ``package``, or why not known."""
    try:
        found = git("rev-parse", "--show-toplevel", "HEAD", "--abbrev-ref", "HEAD", cwd=package.parent)
        top, commit, branch = found.decode().splitlines()
        return changes(Path(top).resolve(), package, commit, branch)
    except FileNotFoundError:
        return CodeVersion(why="git is not installed")
    except subprocess.TimeoutExpired:
        return CodeVersion(why=f"git did not answer within {GIT_TIMEOUT} s")
    except GitError as error:
        if "ambiguous argument 'HEAD'" in str(error):
            return CodeVersion(why="the repository has no commit yet")
        return CodeVersion(why=str(error))


def check_committed(version: CodeVersion | None, setting: str) -> None:
    """At the start of ``fit``: one line if the code has uncommitted changes; with ``refuse``, an exit.

    ``setting`` is the configuration's ``uncommitted_code``. ``version`` is None in the processes that do not
    check (the other DDP ranks, unless the setting is ``refuse``, where every rank must stop alike).
    """
    if version is None or version.dirty is False:
        return
    if version.dirty:
        more = len(version.changed) - 3
        listed = ", ".join(version.changed[:3]) + (f" and {more} more" if more > 0 else "")
        what = f"the code has uncommitted changes ({listed})"
    else:
        what = f"the code is not at a known commit ({version.why})"
    if setting == "refuse":
        sys.exit(f"error: uncommitted_code refuse: {what}; commit first, or set uncommitted_code: warn")
    if version.dirty and version.patch not in _warned:  # a sweep's trials: once
        _warned.add(version.patch)
        print(
            f"warning: {what}: the run saves them as a patch beside its provenance.json"
            " (uncommitted_code: refuse stops such runs)",
            file=sys.stderr,
            flush=True,
        )


def changes(top: Path, package: Path, commit: str, branch: str) -> CodeVersion:
    """The uncommitted changes in the project folder holding ``package``, in the repository at ``top``."""
    version = CodeVersion(commit=commit, branch=None if branch == "HEAD" else branch)
    project, inside = package.parent, package.relative_to(top).as_posix() + "/"
    # Paths relative to the repository's top, NUL-terminated; a rename is followed by its old path.
    status = git("status", "--porcelain=v1", "-z", "--untracked-files=all", "--", ".", cwd=project)
    entries = iter(status.split(b"\0"))
    tracked, untracked = [], []
    for entry in entries:
        if not entry:
            continue
        status, path = entry[:2].decode(), entry[3:].decode(errors="surrogateescape")
        if status == "??":
            if path.startswith(inside):
                untracked.append(path)
            continue
        tracked.append(path)
        if status[0] in "RC":
            next(entries)
    version.changed = tracked + untracked
    version.dirty = bool(version.changed)
    pieces: list[bytes] = []
    if tracked:
        # Prefixes given: with a user's diff.noprefix or diff.mnemonicPrefix, git apply would misread it.
        prefixes = ("--src-prefix=a/", "--dst-prefix=b/")
        diff = git("diff", "HEAD", "--no-color", "--no-ext-diff", *prefixes, "--", ".", cwd=project)
        pieces = [b"diff --git " + piece for piece in re.split(rb"(?m)^diff --git ", diff) if piece]
    pieces += [new_file(top, path, version.left_out) for path in untracked]
    size = 0
    for piece in filter(None, pieces):
        path = piece.split(b"\n", 1)[0].decode(errors="replace").split(" b/", 1)[-1]
        if re.search(rb"(?m)^(Binary files |GIT binary patch)", piece):
            version.left_out.append(f"{path} (binary)")
        elif size + len(piece) > PATCH_LIMIT:
            version.left_out.append(f"{path} (past the {PATCH_LIMIT:,}-byte limit of the patch)")
        else:
            version.patch += piece
            size += len(piece)
    return version


def new_file(top: Path, path: str, left_out: list[str]) -> bytes:
    """An untracked file as a patch that creates it; empty (and listed in ``left_out``) if it is not saved."""
    file = top / path
    size = file.stat().st_size
    if size > UNTRACKED_LIMIT:
        left_out.append(f"{path} (untracked, {size:,} bytes, over {UNTRACKED_LIMIT:,})")
        return b""
    data = file.read_bytes()
    try:
        data.decode("utf-8")
    except UnicodeDecodeError:
        left_out.append(f"{path} (untracked, not UTF-8 text)")
        return b""
    if b"\0" in data:
        left_out.append(f"{path} (untracked, not text)")
        return b""
    mode = "100755" if os.access(file, os.X_OK) else "100644"
    name = path.encode(errors="surrogateescape")
    header = b"diff --git a/%s b/%s\nnew file mode %s\n" % (name, name, mode.encode())
    if not data:
        return header
    lines = data.split(b"\n")
    ends_with_newline = lines[-1] == b""
    if ends_with_newline:
        lines.pop()
    body = b"".join(b"+" + line + b"\n" for line in lines)
    if not ends_with_newline:
        body += b"\\ No newline at end of file\n"
    return header + b"--- /dev/null\n+++ b/%s\n@@ -0,0 +1,%d @@\n" % (name, len(lines)) + body
