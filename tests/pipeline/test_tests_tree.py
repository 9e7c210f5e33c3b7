"""The test suite's own layout: folders that mirror the package, no test module importing
another, one home for the repo root.

A test module is a leaf: what two of them share is a fixture in a ``conftest.py`` (of the
lowest folder above both) or a plain helper in a module beside ``tests/conftest.py``. Importing
a test module from another runs its tests' module-level code twice and hides the dependency.
"""

from __future__ import annotations

import ast
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.messages import assert_a_line_names, assert_names, raises_naming
from tests.repo_params import REPO

TESTS = REPO / "tests"
# One folder per layer of the package (and the pipeline and benchmarks around it).
FOLDERS = {"data", "model", "evaluation", "review", "serving", "pipeline", "benchmarks"}


def python_files() -> list[Path]:
    return sorted(p for p in TESTS.rglob("*.py") if "__pycache__" not in p.parts)


def imported_modules(path: Path) -> list[tuple[int, str]]:
    """Every module ``path`` imports (``from a import b`` gives ``a`` and ``a.b``), by line."""
    found = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:  # a relative import: resolve it against the file's package
                package = path.parent.relative_to(REPO).parts
                base = package[: len(package) - (node.level - 1)]
                module = ".".join([*base, *([node.module] if node.module else [])])
            else:
                module = node.module or ""
            found.append((node.lineno, module))
            found += [(node.lineno, f"{module}.{alias.name}") for alias in node.names]
    return found


def is_test_or_conftest(module: str) -> bool:
    last = module.rsplit(".", 1)[-1]
    return last.startswith("test_") or last == "conftest"


def test_no_test_module_imports_a_test_module_or_a_conftest():
    offenders = [
        f"{path.relative_to(REPO)}:{line}: imports {module}"
        for path in python_files()
        for line, module in imported_modules(path)
        if is_test_or_conftest(module)
    ]
    assert not offenders, (
        "share fixtures through conftest.py, helpers through a helper module:\n"
        + ("\n".join(offenders))
    )


def test_every_test_module_is_in_a_folder_of_the_layers_with_a_conftest():
    top = sorted(p.name for p in TESTS.glob("test_*.py"))
    assert not top, f"test modules belong in a layer's folder, not in tests/: {top}"
    folders = {p.parent for p in TESTS.rglob("test_*.py")}
    assert {f.name for f in folders} <= FOLDERS, sorted(f.name for f in folders)
    for folder in sorted(folders | {TESTS / name for name in FOLDERS}):
        for name in ("conftest.py", "__init__.py"):
            assert (folder / name).is_file(), f"{folder.relative_to(REPO)} lacks {name}"


def test_the_repo_root_has_one_home():
    """Only tests/repo_params.py counts ``parents`` of its own path; the rest import ``REPO``
    (a file moved one folder deeper would otherwise point at the wrong root)."""
    counting = [
        str(path.relative_to(REPO))
        for path in python_files()
        if "parents[" in path.read_text(encoding="utf-8")
        and path.resolve() != Path(__file__).resolve()
    ]
    assert counting == ["tests/repo_params.py"], counting


def test_a_message_check_finds_whole_facts_and_fails_on_a_bare_message():
    """``tests/messages.py`` checks facts, not prose: a message reduced to "error" fails it, and
    a fact is found only whole (a key inside a longer key, a number inside a longer number or a
    temporary path, does not count)."""
    message = "/tmp/pytest-3/params.yaml: train: unknown key(s) learning_rat; line 13, 18.3%"
    assert_names(message, Path("/tmp/pytest-3/params.yaml"), "train", "learning_rat", "line 13")
    assert_a_line_names(f"header\n{message}", "learning_rat", 13, "18.3%")
    for fact in ("learning_ra", 3, 18, "rat"):
        with pytest.raises(AssertionError):
            assert_names(message, fact)
    with pytest.raises(AssertionError):
        assert_names("error", "params.yaml")
    with pytest.raises(AssertionError):  # both facts, but not on one line
        assert_a_line_names("a.tsv\nline 3", "a.tsv", "line 3")
    with raises_naming(ValueError, "'x'"):
        raise ValueError("bad value 'x'")
    with pytest.raises(AssertionError), raises_naming(ValueError, "'x'"):
        raise ValueError("error")


@pytest.mark.slow  # a pytest collection in a subprocess, torch imported: about 10 s
def test_the_costliest_files_are_collected_first():
    """`make test` hands files to its two workers in collection order: the integration file
    first, then files with slow tests, then the rest, each file's tests together."""
    import subprocess
    import sys

    files = [
        "tests/data/test_audio.py",  # no slow test
        "tests/model/test_training.py",  # slow tests
        "tests/pipeline/test_pipeline_integration.py",  # dvc repro
    ]
    proc = subprocess.run(
        [sys.executable, "-m", "pytest", "--collect-only", "-q", "-p", "no:cacheprovider", *files],
        cwd=REPO,
        capture_output=True,
        text=True,
        check=True,
    )
    ids = [line for line in proc.stdout.splitlines() if "::" in line]
    order = list(dict.fromkeys(i.split("::")[0] for i in ids))
    assert order == files[::-1], order
    # Each file's tests stay contiguous (module fixtures are built once per worker).
    starts = [i.split("::")[0] for i in ids]
    assert sum(a != b for a, b in zip(starts, starts[1:], strict=False)) == len(files) - 1


def test_each_process_of_the_suite_runs_one_openmp_thread():
    """Two workers on two cores: a second OpenMP thread per process only spins. tests/conftest.py
    sets it before torch loads, and the stages that `dvc repro` starts inherit it (a child
    process here: an engine test may have set this process's own count since)."""
    assert os.environ.get("OMP_NUM_THREADS"), "tests/conftest.py sets OMP_NUM_THREADS"
    child = subprocess.run(
        [sys.executable, "-c", "import torch; print(torch.get_num_threads())"],
        capture_output=True,
        text=True,
        check=True,
    )
    assert int(child.stdout) == int(os.environ["OMP_NUM_THREADS"])


def test_make_turns_the_byte_code_cache_on_for_every_recipe(tmp_path):
    """A shell with PYTHONDONTWRITEBYTECODE set would make each stage process compile the
    package again; the Makefile's recipes run without it."""
    probe = tmp_path / "probe.mk"
    probe.write_text(
        f'include {REPO / "Makefile"}\nprobe:\n\t@echo "[$$PYTHONDONTWRITEBYTECODE]"\n',
        encoding="utf-8",
    )
    proc = subprocess.run(
        ["make", "-s", "-f", str(probe), "probe"],
        cwd=REPO,
        env={**os.environ, "PYTHONDONTWRITEBYTECODE": "1"},
        capture_output=True,
        text=True,
        check=True,
    )
    assert proc.stdout.strip() == "[]"
