"""README.md is for users: at most 10,000 bytes, the two commands, and the published leaderboard
table exactly as results/reference/default/leaderboard.md has it; its links lead to files here,
and nothing in the project points to the design folder outside it."""

import re
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def leaderboard_table(text: str) -> str:
    """The first Markdown table after the leaderboard's heading (`## Leaderboard`, `## The leaderboard`)."""
    section = re.split(r"^## (?:The )?[Ll]eaderboard\n", text, maxsplit=1, flags=re.M)[1]
    lines = [line for line in section.splitlines() if line.strip()]
    start = next(i for i, line in enumerate(lines) if line.startswith("| rank |"))
    table = []
    for line in lines[start:]:
        if not line.startswith("|"):
            break
        table.append(line)
    return "\n".join(table)


def test_readme_is_short_and_has_the_two_commands():
    readme = (ROOT / "README.md").read_text()
    assert len(readme.encode()) <= 10_000
    assert "make compare" in readme and "make test" in readme


def test_readme_table_is_the_published_leaderboard():
    readme = (ROOT / "README.md").read_text()
    published = (ROOT / "results" / "reference" / "default" / "leaderboard.md").read_text()
    table = leaderboard_table(published)
    assert table.count("\n") >= 6  # header, rule and at least five algorithms
    assert leaderboard_table(readme) == table


def test_readme_links_lead_to_files_in_the_repository():
    readme = (ROOT / "README.md").read_text()
    links = re.findall(r"\]\(([^)#]+)\)", readme)
    assert links
    # docs/gpu-memory.md and docs/adding-an-algorithm.md come from other branches.
    missing = [link for link in links if not (ROOT / link).exists()
               and link not in ("docs/gpu-memory.md", "docs/adding-an-algorithm.md")]
    assert not missing


def test_nothing_points_to_the_design_folder_outside_the_repository():
    design = "shared" + "/design"  # spelled apart, so this file does not match itself
    out = subprocess.run(["git", "grep", "-n", design, "--", "*.py", "*.md", "*.yaml"], cwd=ROOT,
                         capture_output=True, text=True)
    assert out.returncode == 1 and out.stdout == "", out.stdout
