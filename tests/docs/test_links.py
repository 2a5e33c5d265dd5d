"""Every reference in the repository's Markdown resolves inside the repository.

Checked: Markdown links (``[text](path#anchor)``, anchors against the target's headings,
GitHub's slugs), any ``name.md`` mentioned in the text, and backticked paths under the
repository's top-level folders (``tests/http/test_docs.py``) that name a file.
"""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
TOP_DIRS = ("eventstore", "brokers", "migrations", "tests", "docs", "bench", "integrations", ".ci")
LINK = re.compile(r"\[[^\]]*\]\(([^)\s]+)\)")
MD_MENTION = re.compile(r"(?<![\w/.-])([\w./-]+\.md)\b")
CODE_PATH = re.compile(r"`([\w.-]+/[\w./-]*\.\w+)(?:::\w+)?`")
FENCE = re.compile(r"^```.*?^```", re.S | re.M)


def markdown_files() -> list[Path]:
    listed = subprocess.run(
        ["git", "ls-files", "*.md"], cwd=ROOT, capture_output=True, text=True, check=True
    ).stdout.split()
    return [ROOT / name for name in listed if (ROOT / name).exists()]


def slug(heading: str) -> str:
    """GitHub's anchor for a heading: lower case, punctuation dropped, spaces to dashes."""
    text = re.sub(r"[`*_]|\[([^\]]*)\]\([^)]*\)", r"\1", heading.strip().lower())
    return re.sub(r"[^\w\- ]", "", text).replace(" ", "-")


def anchors(path: Path) -> set[str]:
    text = FENCE.sub("", path.read_text(encoding="utf-8"))
    return {slug(m.group(1)) for m in re.finditer(r"^#+\s+(.*)$", text, flags=re.M)}


def broken_references(path: Path, root: Path = ROOT) -> list[str]:
    text = path.read_text(encoding="utf-8")
    prose = FENCE.sub("", text)
    problems = []
    for target in LINK.findall(prose):
        if re.match(r"[a-z]+:", target):  # http:, https:, mailto:
            continue
        file_part, _, anchor = target.partition("#")
        resolved = (path.parent / file_part).resolve() if file_part else path
        if not resolved.exists() or root not in (resolved, *resolved.parents):
            problems.append(f"link {target!r}: no such file in the repository")
        elif anchor and resolved.suffix == ".md" and anchor not in anchors(resolved):
            problems.append(f"link {target!r}: no heading with anchor #{anchor}")
    for name in MD_MENTION.findall(LINK.sub("", prose)):
        candidates = [path.parent / name, root / name, root / "docs" / name]
        if not any(c.exists() for c in candidates):
            problems.append(f"mentions {name!r}, which is not in the repository")
    for name in CODE_PATH.findall(text):
        if name.split("/", 1)[0] in TOP_DIRS and not (root / name).exists():
            problems.append(f"names {name!r}, which does not exist")
    return problems


@pytest.mark.parametrize("path", markdown_files(), ids=lambda p: str(p.relative_to(ROOT)))
def test_every_reference_resolves_inside_the_repository(path: Path) -> None:
    assert broken_references(path) == []


def test_the_checker_finds_what_is_broken(tmp_path: Path) -> None:
    (tmp_path / "docs").mkdir()
    (tmp_path / "docs" / "http.md").write_text("# HTTP API\n\n## Errors\n")
    bad = tmp_path / "bad.md"
    bad.write_text(
        "See [x](nowhere.md), [y](docs/http.md#no-such-heading), [z](docs/http.md#errors), "
        "`rasa-compat.md` and `tests/no/such_test.py`.\n"
    )
    assert broken_references(bad, tmp_path) == [
        "link 'nowhere.md': no such file in the repository",
        "link 'docs/http.md#no-such-heading': no heading with anchor #no-such-heading",
        "mentions 'rasa-compat.md', which is not in the repository",
        "names 'tests/no/such_test.py', which does not exist",
    ]
