"""Check the README and the docs pages: every ```python block runs, every link stays inside the
repository and points at a file that exists.

    python docs/check_docs.py                 # README.md and docs/**/*.md
    python docs/check_docs.py docs/sdes.md    # chosen files
    python docs/check_docs.py -v ...          # also print what the blocks print

Each file's python blocks run in order in one fresh interpreter (a page may build on its
earlier blocks), in a temporary working directory. `docs/design.md` is not run: its blocks show
the shapes of calls, not programs. `mkdocs build --strict` checks the links between docs pages
and their anchors; this script also checks the README's links (which mkdocs does not see) and
that no page links outside the repository. Exits non-zero after reporting every failure.
"""

import pathlib
import re
import subprocess
import sys
import tempfile

ROOT = pathlib.Path(__file__).resolve().parent.parent
NOT_RUN = {"docs/design.md"}
BLOCK = re.compile(r"^```python[^\n]*\n(.*?)^```", re.S | re.M)
FENCE = re.compile(r"^```.*?^```", re.S | re.M)
LINK = re.compile(r"\]\(([^)\s]+)\)")
EXTERNAL = re.compile(r"\b(?:https?|ftp)://|\bwww\.", re.I)


def blocks(text):
    return BLOCK.findall(text)


def run_blocks(rel, found, verbose=False):
    """Run a file's python blocks in one interpreter; return an error text or None."""
    program = "\n".join(
        f"print('--- block {i + 1}', flush=True)\n{code}" for i, code in enumerate(found)
    )
    with tempfile.TemporaryDirectory() as tmp:
        done = subprocess.run([sys.executable, "-c", program], cwd=tmp, capture_output=True,
                              text=True, check=False)
    if verbose:
        print(done.stdout, end="")
    if done.returncode:
        marks = [line for line in done.stdout.splitlines() if line.startswith("--- block")]
        where = marks[-1][4:] if marks else "before the first block"
        return f"{rel}, {where}:\n{done.stderr[-3000:]}"
    return None


def bad_links(path, text):
    """Links that leave the repository, or whose target file does not exist."""
    problems = []
    if EXTERNAL.search(text):
        problems.append(f"{path.relative_to(ROOT)}: links outside the repository: "
                        + ", ".join(sorted(set(EXTERNAL.findall(text)))))
    prose = FENCE.sub("", text)
    for target in LINK.findall(prose):
        file_part = target.split("#", 1)[0]
        if not file_part:
            continue
        resolved = (path.parent / file_part).resolve()
        if ROOT not in resolved.parents and resolved != ROOT:
            problems.append(f"{path.relative_to(ROOT)}: link {target!r} leaves the repository")
        elif not resolved.exists():
            problems.append(f"{path.relative_to(ROOT)}: link {target!r} points at nothing")
    return problems


def main(argv):
    verbose = "-v" in argv
    argv = [a for a in argv if a != "-v"]
    if argv:
        paths = [pathlib.Path(a).resolve() for a in argv]
    else:
        paths = [ROOT / "README.md", *sorted((ROOT / "docs").rglob("*.md"))]
    failures = []
    for path in paths:
        rel = path.relative_to(ROOT).as_posix()
        text = path.read_text(encoding="utf-8")
        failures += bad_links(path, text)
        found = [] if rel in NOT_RUN else blocks(text)
        error = run_blocks(rel, found, verbose) if found else None
        if error:
            failures.append(error)
        elif found:
            print(f"ok {rel} ({len(found)} python block{'s' * (len(found) != 1)})")
    for failure in failures:
        print(f"FAILED {failure}")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
