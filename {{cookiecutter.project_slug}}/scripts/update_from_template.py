"""Put the template's newer version on a branch of its own: ``python scripts/update_from_template.py``.

Run by the scheduled CI job, which then pushes the branch and opens a pull or merge request; it runs as well
by hand. When the template this project was generated from (``.cruft.json``) has moved on, it applies the
difference with ``cruft update`` on a new branch, ``template-update/<template commit>``, and commits it,
conflicts included: where a change meets an edit of yours, the file keeps conflict markers (or a ``.rej``
file holds the change), listed in the commit message, for a person to resolve in the request.

It prints the branch's name on standard output, and nothing when the project is up to date or that branch
exists already, here or on ``origin`` (the update was proposed before); the rest goes to standard error. It
needs cruft and git, a clean working tree, and a git identity to commit with.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

BRANCH = "template-update/{commit}"


def run(*command: str, check: bool = True) -> subprocess.CompletedProcess:
    """Run ``command`` in the project folder, its output captured; exit with one line if it fails."""
    result = subprocess.run(command, capture_output=True, text=True)
    if check and result.returncode != 0:
        said = (result.stderr or result.stdout).strip().splitlines() or [f"exit status {result.returncode}"]
        sys.exit(f"error: {' '.join(command)}: {said[-1]}")
    return result


def cruft(*args: str, check: bool = True) -> subprocess.CompletedProcess:
    """Run cruft with this interpreter: the one it was installed into."""
    return run(sys.executable, "-m", "cruft", *args, check=check)


def proposed_already(branch: str) -> bool:
    """Whether ``branch`` exists here or on ``origin`` (if there is one): the update was proposed before."""
    if run("git", "rev-parse", "--verify", "--quiet", f"refs/heads/{branch}", check=False).returncode == 0:
        return True
    if run("git", "remote", "get-url", "origin", check=False).returncode != 0:
        return False
    return bool(run("git", "ls-remote", "--heads", "origin", f"refs/heads/{branch}").stdout.strip())


def conflicts() -> list[str]:
    """The files the update left for a person: those with conflict markers, and the ``.rej`` files."""
    marked = run("git", "diff", "--name-only", "--diff-filter=U").stdout.split()
    untracked = run("git", "ls-files", "--others", "--exclude-standard").stdout.split()
    return sorted({*marked, *(path for path in untracked if path.endswith(".rej"))})


def main() -> None:
    """Check for a newer template; if there is one, commit its update on a new branch and print the branch."""
    if not Path(".cruft.json").is_file():
        sys.exit("error: .cruft.json not found: run this in the project folder, or `cruft link <url>` it")
    if run("git", "status", "--porcelain").stdout.strip():
        sys.exit("error: the working tree has uncommitted changes: the update goes on a clean checkout")
    before = json.loads(Path(".cruft.json").read_text(encoding="utf-8"))["commit"]
    if cruft("check", check=False).returncode == 0:
        print(f"up to date with the template (commit {before[:12]})", file=sys.stderr)
        return
    # cruft applies the difference with `git apply -3`; what does not apply is left marked for a person.
    cruft("update", "--skip-apply-ask")
    after = json.loads(Path(".cruft.json").read_text(encoding="utf-8"))["commit"]
    left = conflicts()
    run("git", "add", "--all")
    branch = BRANCH.format(commit=after[:12])
    if after == before or proposed_already(branch):
        run("git", "reset", "--hard", "--quiet")  # the tree was clean: this undoes the update alone
        why = "nothing of the template changed" if after == before else f"{branch} exists already"
        print(f"template commit {after[:12]}: {why}", file=sys.stderr)
        return
    run("git", "switch", "--quiet", "--create", branch)
    message = f"Update from the project template: {before[:12]} -> {after[:12]}"
    if left:
        message += "\n\nTo resolve (conflict markers, or the change in a .rej file):\n" + "\n".join(left)
    # --no-verify: the pre-commit hooks would refuse the conflict markers a person is to resolve.
    run("git", "commit", "--quiet", "--no-verify", "--message", message)
    print(f"{branch}: {len(left)} file(s) to resolve" if left else f"{branch}: no conflicts", file=sys.stderr)
    print(branch)


if __name__ == "__main__":
    main()
