"""A fresh clone installs the library versions that wrote dvc.lock (constraints.txt).

Two fresh clones an hour apart wrote different parquet bytes for the same tables: pandas
3.1.2 had been released in between, and parquet and Arrow files record the pandas version in
their schema metadata. So setup installs with constraints.txt, and this environment must be
the one it describes.
"""

from __future__ import annotations

import re
from importlib.metadata import version

from packaging.utils import canonicalize_name

from tests.repo_params import REPO

# Libraries whose version reaches the bytes of a stage's output or its numbers.
WRITERS = ("pandas", "pyarrow", "datasets", "numpy", "transformers", "ctranslate2", "soxr")


def pins() -> dict[str, str]:
    text = (REPO / "constraints.txt").read_text(encoding="utf-8")
    found = re.findall(r"^([A-Za-z0-9_.-]+)==(\S+)$", text, flags=re.M)
    return {canonicalize_name(name): pinned for name, pinned in found}


def test_setup_installs_with_the_constraints():
    setup = (REPO / "scripts" / "setup.sh").read_text(encoding="utf-8")
    assert "pip install -q -c constraints.txt -e '.[dev]'" in setup
    assert "constraints.txt" in setup.split("want=", 1)[1].splitlines()[0]  # reinstall on change


def test_every_output_writer_is_pinned_and_installed_at_its_pin():
    pinned = pins()
    missing = [name for name in WRITERS if name not in pinned]
    assert not missing, f"constraints.txt does not pin {missing}"
    drift = {n: (version(n), pinned[n]) for n in WRITERS if version(n) != pinned[n]}
    assert not drift, f"installed != constraints.txt (run make setup): {drift}"
