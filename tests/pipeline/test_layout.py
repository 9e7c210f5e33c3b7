"""README's layout is a true map, and the repo holds no machine's paths or ``sys.path`` edits.

A newcomer reads README's layout first: every package folder and top-level module, every stage,
every page and every benchmark script must be on it (a file added without a line there fails
here). The editable install (``pip install -e .``) makes ``swedish_transcriber``, ``stages``
and ``benchmarks`` importable, so no script edits ``sys.path``.
"""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

from tests.repo_params import REPO

PACKAGE = REPO / "swedish_transcriber"


def readme_section(title: str) -> str:
    """The text of README's ``## title`` section."""
    text = (REPO / "README.md").read_text(encoding="utf-8")
    start = text.index(f"\n## {title}\n")
    end = text.find("\n## ", start + 1)
    return text[start : end if end > 0 else None]


def layout_names() -> set[str]:
    """Every path-like word of README's layout block (``data/``, ``whisper.py``, ...)."""
    return set(re.findall(r"[\w./-]+", readme_section("Layout")))


def test_every_package_folder_and_module_is_on_the_layout():
    names = layout_names()
    folders = [p.name + "/" for p in PACKAGE.iterdir() if (p / "__init__.py").is_file()]
    modules = [p.name for p in PACKAGE.glob("*.py") if p.name != "__init__.py"]
    missing = [n for n in folders + modules if n not in names]
    assert not missing, f"README.md's layout lacks {missing}"


def test_every_page_and_benchmark_script_is_on_the_layout():
    names = layout_names()
    pages = [f"app/pages/{p.name}" for p in (REPO / "app" / "pages").glob("*.py")]
    benchmarks, studies = REPO / "benchmarks", REPO / "benchmarks" / "studies"
    scripts = [*benchmarks.glob("*.py"), *benchmarks.glob("*.sh"), *studies.glob("*.py")]
    folders = [p.name + "/" for p in benchmarks.iterdir() if (p / "__init__.py").is_file()]
    wanted = pages + folders + [p.name for p in scripts if p.name != "__init__.py"]
    missing = sorted(n for n in wanted if n not in names)
    assert not missing, f"README.md's layout lacks {missing}"


def test_every_stage_has_a_row_in_the_pipeline_table():
    table = readme_section("The pipeline")
    stages = [p.stem for p in (REPO / "stages").glob("*.py") if p.stem != "__init__"]
    missing = sorted(s for s in stages if f"| `{s}` |" not in table and f"| `{s}@" not in table)
    assert not missing, f"README.md's pipeline table lacks the stage(s) {missing}"


def tracked_files(*patterns: str) -> list[Path]:
    out = subprocess.run(
        ["git", "ls-files", "--", *patterns], cwd=REPO, capture_output=True, text=True, check=True
    ).stdout
    return [REPO / line for line in out.splitlines() if (REPO / line).is_file()]


def test_no_script_edits_sys_path():
    edits = [
        f"{p.relative_to(REPO)}:{n}"
        for p in tracked_files("*.py")
        if p.name != "test_layout.py"
        for n, line in enumerate(p.read_text(encoding="utf-8").splitlines(), 1)
        if re.search(r"sys\.path\.(insert|append)", line)
    ]
    assert not edits, f"sys.path edits (the editable install makes them needless): {edits}"


def test_no_machine_paths_in_the_repo():
    """No absolute path of one machine's checkout (a default, an example, a doc)."""
    pattern = re.compile(r"(?<![\w.])/(work|home|Users)/[\w.-]+")
    found = [
        f"{p.relative_to(REPO)}:{n}: {m.group(0)}"
        for p in tracked_files("*.py", "*.md", "*.sh", "*.yaml", "*.toml", "*.json", "Makefile")
        if p.name != "test_layout.py"
        for n, line in enumerate(p.read_text(encoding="utf-8").splitlines(), 1)
        for m in [pattern.search(line)]
        if m
    ]
    assert not found, f"machine paths: {found}"


def test_every_test_file_a_doc_names_exists():
    """A moved or renamed test file leaves no stale path in README, docs or comments."""
    stale = [
        f"{p.relative_to(REPO)}:{n}: {m.group(0)}"
        for p in tracked_files("*.py", "*.md", "*.sh", "*.yaml", "*.yml", "*.toml", "Makefile")
        for n, line in enumerate(p.read_text(encoding="utf-8").splitlines(), 1)
        for m in re.finditer(r"tests/[\w/]*test_\w+\.py", line)
        if not (REPO / m.group(0)).is_file()
    ]
    assert not stale, f"paths of test files that do not exist: {stale}"
