"""Named presets: a whole recipe as ``dvc exp run -S`` overrides of params.yaml.

``conf/presets/<name>.yaml`` holds only the keys a recipe changes (nested like params.yaml,
with its reasons as comments); params.yaml stays the one commented home of every other value
and of the demo default. A preset becomes ``-S key=value`` args, so an experiment is::

    dvc exp run -n cv-small $(python -m swedish_transcriber.presets cv-small-gpu)

and a user adds their own ``-S`` after it (the last override of a key wins).

Why overrides and not DVC's Hydra composition: with ``hydra.enabled`` every ``dvc exp run``
rewrites params.yaml from ``conf/`` (``OmegaConf.to_yaml``), dropping its comments, and the
values would live in two places. ``-S`` goes through DVC's round-trip YAML writer, which keeps
them.

A preset's args set every key that *any* preset sets: the keys this preset leaves out get
params.yaml's committed value (``git show HEAD:params.yaml``; the file itself outside git).
``dvc exp run`` in the workspace leaves the experiment's params in params.yaml, so without
this, ``demo-cpu`` after ``cv-small-gpu`` would quietly keep whisper-small.
"""

from __future__ import annotations

import argparse
import copy
import subprocess
import sys
from pathlib import Path
from typing import Any

import yaml

from swedish_transcriber.params import PARAMS_FILE, ParamsError, load_params

PRESETS_DIR = Path("conf/presets")


def names(presets_dir: Path = PRESETS_DIR) -> list[str]:
    """The presets there are (file names without ``.yaml``)."""
    return sorted(p.stem for p in Path(presets_dir).glob("*.yaml"))


EXTENDS = "extends"  # a preset's one key that is not a param: the preset it starts from


def load(name: str, presets_dir: Path = PRESETS_DIR, _seen: tuple[str, ...] = ()) -> dict[str, Any]:
    """Preset ``name`` as a nested mapping of the keys it overrides; with ``extends: other``,
    ``other``'s keys first and its own over them (a variant names only what it changes)."""
    path = Path(presets_dir) / f"{name}.yaml"
    if not path.is_file():
        raise ParamsError(
            f"{path}: no preset {name!r}; presets: {', '.join(names(presets_dir)) or 'none'}"
        )
    data = load_params(path) if path.read_text(encoding="utf-8").strip() else {}
    parent = data.pop(EXTENDS, None)
    if parent is None:
        return data
    if not isinstance(parent, str) or parent in (*_seen, name):
        raise ParamsError(f"{path}: extends {parent!r}: not a preset name, or a circle")
    return merge(load(parent, presets_dir, (*_seen, name)), data)


def merge(base: dict[str, Any], over: dict[str, Any]) -> dict[str, Any]:
    """``base`` with ``over``'s keys set, nested mappings merged key by key."""
    out = copy.deepcopy(base)
    for key, value in over.items():
        if isinstance(value, dict) and value and isinstance(out.get(key), dict):
            out[key] = merge(out[key], value)
        else:
            out[key] = copy.deepcopy(value)
    return out


def flatten(nested: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    """``{"train": {"distill": {"weight": 0}}}`` -> ``{"train.distill.weight": 0}``.

    Lists are values, not nested keys: ``train.trainable`` is replaced whole.
    """
    flat: dict[str, Any] = {}
    for key, value in nested.items():
        dotted = f"{prefix}{key}"
        if isinstance(value, dict) and value:
            flat |= flatten(value, dotted + ".")
        else:
            flat[dotted] = value
    return flat


def lookup(params: dict[str, Any], dotted: str) -> Any:
    """The value at ``dotted`` in ``params``; KeyError when a part is missing."""
    found: Any = params
    for part in dotted.split("."):
        if not isinstance(found, dict) or part not in found:
            raise KeyError(dotted)
        found = found[part]
    return found


def committed_params(params_file: Path = PARAMS_FILE) -> dict[str, Any]:
    """params.yaml as committed at HEAD, or the file itself where git has no committed copy."""
    path = Path(params_file)
    try:
        text = subprocess.run(
            ["git", "show", f"HEAD:./{path.name}"],
            cwd=path.parent if str(path.parent) else ".",
            capture_output=True,
            text=True,
            check=True,
        ).stdout
    except (OSError, subprocess.CalledProcessError):
        return load_params(path)
    data = yaml.safe_load(text) or {}
    return data if isinstance(data, dict) else load_params(path)


def overrides(
    name: str, baseline: dict[str, Any], presets_dir: Path = PRESETS_DIR
) -> dict[str, Any]:
    """Dotted key -> value for preset ``name``: its own keys, and every key another preset
    sets at ``baseline``'s value. A key params.yaml lacks is an error naming the preset."""
    own = flatten(load(name, presets_dir))
    every: dict[str, Any] = {}
    for other in names(presets_dir):
        for key in flatten(load(other, presets_dir)):
            try:
                every[key] = lookup(baseline, key)
            except KeyError:
                raise ParamsError(
                    f"{Path(presets_dir) / other}.yaml: sets {key}, which params.yaml does not "
                    f"have (a preset changes values; a new key belongs in params.yaml first)"
                ) from None
    return every | own


def apply(params: dict[str, Any], values: dict[str, Any]) -> dict[str, Any]:
    """A copy of ``params`` with each dotted key of ``values`` set."""
    out = copy.deepcopy(params)
    for dotted, value in values.items():
        *parents, leaf = dotted.split(".")
        node = out
        for part in parents:
            node = node[part]
        node[leaf] = copy.deepcopy(value)
    return out


def resolve(
    name: str,
    params_file: Path = PARAMS_FILE,
    presets_dir: Path = PRESETS_DIR,
    baseline: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """The whole params of preset ``name``: params.yaml with its overrides applied."""
    baseline = committed_params(params_file) if baseline is None else baseline
    return apply(load_params(params_file), overrides(name, baseline, presets_dir))


def hydra_value(value: Any) -> str:
    """``value`` in Hydra's override grammar (what ``dvc exp run -S`` parses), checked by
    parsing it back: a string that would read as another type or break the grammar is quoted."""
    if isinstance(value, bool):
        text = "true" if value else "false"
    elif value is None:
        text = "null"
    elif isinstance(value, int | float):
        text = repr(value)
    elif isinstance(value, list | tuple):
        text = "[" + ",".join(hydra_value(v) for v in value) + "]"
    elif isinstance(value, dict):
        text = "{" + ",".join(f"{k}:{hydra_value(v)}" for k, v in value.items()) + "}"
    elif isinstance(value, str):
        text = value if _parses_to(value, value) else "'" + value.replace("'", "\\'") + "'"
    else:
        raise ParamsError(f"cannot write {value!r} as a -S value")
    if not _parses_to(text, value):
        raise ParamsError(f"cannot write {value!r} as a -S value (Hydra reads {text} otherwise)")
    return text


def _parses_to(text: str, value: Any) -> bool:
    from hydra.core.override_parser.overrides_parser import OverridesParser

    try:
        parsed = OverridesParser.create().parse_override(f"k={text}").value()
    except Exception:  # noqa: BLE001 (any grammar error means: not this spelling)
        return False
    return _plain(parsed) == _plain(value) and type(parsed) is type(value)


def _plain(value: Any) -> Any:
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    return value


def set_param_args(
    name: str, params_file: Path = PARAMS_FILE, presets_dir: Path = PRESETS_DIR
) -> list[str]:
    """``["-S", "key=value", ...]`` for ``dvc exp run``: preset ``name`` over params.yaml."""
    args: list[str] = []
    values = overrides(name, committed_params(params_file), presets_dir)
    for key, value in values.items():
        args += ["-S", f"{key}={hydra_value(value)}"]
    return args


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m swedish_transcriber.presets",
        description="Print a preset as `dvc exp run -S` args: "
        "dvc exp run -n NAME $(python -m swedish_transcriber.presets PRESET) [-S k=v ...]",
    )
    parser.add_argument("preset", nargs="?", help="a name from conf/presets (see --list)")
    parser.add_argument("--list", action="store_true", help="list the presets")
    args = parser.parse_args(argv)
    if args.list or not args.preset:
        print("\n".join(names()))
        return 0
    try:
        words = set_param_args(args.preset)
    except ParamsError as exc:
        print(f"presets: error: {exc}", file=sys.stderr)
        return 1
    spaced = [w for w in words if any(c.isspace() for c in w)]
    if spaced:  # $(...) splits words at spaces; quotes in its output are not removed
        print(
            f"presets: error: {spaced[0]!r} holds a space; pass it as a -S yourself",
            file=sys.stderr,
        )
        return 1
    print(" ".join(words))
    return 0


if __name__ == "__main__":
    sys.exit(main())
