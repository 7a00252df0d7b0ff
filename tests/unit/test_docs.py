"""The documentation: README.md is the front door, docs/ the reference, built as a MkDocs site.

The site builds with ``mkdocs build --strict`` and no warning at all: mkdocs.yml's
``validation`` turns a broken link or anchor, and a page left out of the nav, into warnings,
and --strict makes a warning fail the build. README.md stays short, opens with "The two
commands", and its relative links (GitHub renders them, MkDocs never sees them) reach real files
and headings.
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[2]
README = ROOT / "README.md"
DOCS = ROOT / "docs"
MAX_README_LINES = 250


def mkdocs_config() -> dict:
    return yaml.safe_load((ROOT / "mkdocs.yml").read_text(encoding="utf-8"))


def nav_pages(nav) -> list[str]:
    """Every page the nav lists, however deep."""
    if isinstance(nav, str):
        return [nav]
    if isinstance(nav, list):
        return [page for entry in nav for page in nav_pages(entry)]
    if isinstance(nav, dict):
        return [page for value in nav.values() for page in nav_pages(value)]
    return []


def without_code(markdown: str) -> str:
    """The text outside fenced code blocks and inline code spans (links there are not links)."""
    text = re.sub(r"(?ms)^\s*```.*?^\s*```[^\n]*$", "", markdown)
    return re.sub(r"`[^`\n]*`", "", text)


def github_anchors(markdown: str) -> set[str]:
    """The anchors GitHub gives a file's headings: lower case, punctuation dropped, spaces to
    hyphens, a repeated one numbered (-1, -2, ...)."""
    anchors: set[str] = set()
    fenced = False
    for line in markdown.splitlines():
        if line.lstrip().startswith("```"):
            fenced = not fenced
            continue
        heading = re.match(r"#{1,6}\s+(.*?)\s*#*\s*$", line)
        if fenced or not heading:
            continue
        text = re.sub(r"!?\[([^\]]*)\]\([^)]*\)", r"\1", heading.group(1))
        slug = re.sub(r"[^\w\- ]", "", text.lower()).replace(" ", "-")
        anchor, n = slug, 0
        while anchor in anchors:
            n += 1
            anchor = f"{slug}-{n}"
        anchors.add(anchor)
    return anchors


def relative_links(markdown: str) -> list[str]:
    """Link and image targets of a Markdown file that are not URLs: [text](target), ![alt](target),
    [label]: target, and href/src attributes of inline HTML."""
    text = without_code(markdown)
    targets = re.findall(r"\]\(\s*<?([^)\s>]+)>?(?:\s+\"[^\"]*\")?\s*\)", text)
    targets += re.findall(r"(?m)^\s*\[[^\]]+\]:\s*<?(\S+?)>?(?:\s|$)", text)
    targets += re.findall(r"""(?:href|src)\s*=\s*["']([^"']+)["']""", text)
    return [t for t in targets if not re.match(r"[a-zA-Z][a-zA-Z0-9+.-]*:", t)]  # http:, mailto:, ...


def test_the_docs_site_builds_strictly_without_a_single_warning(tmp_path):
    result = subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", str(tmp_path / "site")],
        cwd=ROOT, capture_output=True, text=True, timeout=300)
    output = result.stdout + result.stderr
    warnings = [line for line in output.splitlines() if re.search(r"\b(WARNING|ERROR)\b", line)]
    assert result.returncode == 0 and not warnings, f"mkdocs build --strict:\n{output}"
    assert (tmp_path / "site" / "index.html").is_file()


def test_the_build_is_set_to_fail_on_broken_links_anchors_and_pages_left_out_of_the_nav():
    config = mkdocs_config()
    assert config["docs_dir"] == "docs" and config.get("strict") is True
    assert config["theme"]["name"] in {"mkdocs", "readthedocs"}  # built in: no theme package to install
    validation = config["validation"]
    for group, checks in {"nav": ("omitted_files", "not_found"),
                          "links": ("not_found", "anchors", "unrecognized_links", "absolute_links")}.items():
        for check in checks:
            assert validation[group][check] == "warn", f"validation.{group}.{check} must be 'warn'"


def test_every_page_in_docs_is_in_the_nav_and_every_nav_entry_is_a_page():
    listed = nav_pages(mkdocs_config()["nav"])
    pages = sorted(p.relative_to(DOCS).as_posix() for p in DOCS.rglob("*.md"))
    assert sorted(set(listed)) == pages, "mkdocs.yml's nav and docs/*.md differ"
    assert len(listed) == len(set(listed)), "a page is in the nav twice"
    assert "index.md" in listed and "troubleshooting.md" in listed


def test_the_readme_is_a_short_front_door_that_opens_with_the_two_commands():
    text = README.read_text(encoding="utf-8")
    lines = text.splitlines()
    assert len(lines) <= MAX_README_LINES, f"README.md has {len(lines)} lines; the reference belongs in docs/"
    sections = [line for line in without_code(text).splitlines() if line.startswith("## ")]
    assert sections and sections[0] == "## The two commands", sections[:3]
    assert "## Installing into an existing Airflow" in sections
    assert "make demo" in text and "make test" in text


def test_every_relative_link_in_the_readme_reaches_a_file_and_its_heading():
    text = README.read_text(encoding="utf-8")
    links = relative_links(text)
    assert any(link.startswith("docs/") for link in links), "README.md links into docs/"
    broken = []
    for link in links:
        path, _, anchor = link.partition("#")
        target = (ROOT / path).resolve() if path else README
        if not target.exists() or ROOT not in (target, *target.parents):
            broken.append(f"{link}: no such file")
        elif anchor and target.suffix == ".md" and anchor not in github_anchors(target.read_text(encoding="utf-8")):
            broken.append(f"{link}: no heading #{anchor} in {target.relative_to(ROOT)}")
    assert not broken, "README.md links nowhere:\n" + "\n".join(broken)


def test_the_link_checker_sees_links_and_headings_as_github_does():
    sample = ("# A title\n\n## Undo a run: `crm_revert_run`\n\n## A title\n\n"
              "See [x](docs/a.md#b), ![i](docs/images/c.png), <a href=\"d.md\">d</a>, "
              "[web](https://example.com), `[not](a-link.md)`.\n\n[ref]: docs/e.md\n\n"
              "```\n[nor](this.md)\n```\n")
    assert relative_links(sample) == ["docs/a.md#b", "docs/images/c.png", "docs/e.md", "d.md"]
    assert github_anchors(sample) == {"a-title", "undo-a-run-crm_revert_run", "a-title-1"}
