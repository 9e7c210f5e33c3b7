"""Reading ``params.yaml`` sections strictly.

Every knob of the pipeline lives in ``params.yaml``, and only there; ``dvc exp run -S
section.key=value`` edits that file. A misspelt key would otherwise be silently ignored and an
experiment would quietly run with the default, so each stage declares its section's keys as a
dataclass and unknown or missing keys are an error that names the key and the file. The
dataclasses hold types, bounds (``__post_init__``) and docs, not values: their fields have no
defaults, so params.yaml is the one place a value is written. A field typed as a dataclass is
a nested mapping (``app.train.lora``); a bound it breaks is reported with its dotted name.

A dataclass with a ``SHARED_SECTION`` (``DecodeOptions``: ``decode``) is written once, as that
top-level section, and each field of its type (``evaluate.decode``, ``train.generation``,
``app.decode``) holds only that use's own keys, laid over the shared ones here. YAML merge keys
(``<<: *decode``) would say the same in the file, but ``dvc exp run -S`` rewrites params.yaml
with ruamel's round-trip writer, which then writes every merged key into every use and leaves
the anchor read by nobody. A key that a use does not set yet is added with ``-S
+evaluate.decode.num_beams=2``; ``-S decode.num_beams=2`` changes every use.
"""

from __future__ import annotations

import dataclasses
import re
import types
import typing
from pathlib import Path
from typing import Any, TypeVar

import yaml

PARAMS_FILE = Path("params.yaml")

T = TypeVar("T")


class ParamsError(ValueError):
    """A ``params.yaml`` section is missing, has unknown keys, or has a value of the wrong type."""


class _UniqueKeyLoader(yaml.SafeLoader):
    """PyYAML keeps the last of two equal keys without a word (DVC refuses such a file): a
    test set named twice in ``evaluate.sets`` would silently be one. Refuse it, naming the line.
    """

    def construct_mapping(self, node, deep=False):
        seen: dict[Any, int] = {}
        for key_node, _ in node.value:
            if key_node.tag == "tag:yaml.org,2002:merge":
                continue  # `<<: *anchor` keys may be overridden: that is what they are for
            key = self.construct_object(key_node, deep=deep)
            if isinstance(key, typing.Hashable) and key in seen:
                raise yaml.constructor.ConstructorError(
                    None,
                    None,
                    f"key {key!r} given twice (first on line {seen[key]})",
                    key_node.start_mark,
                )
            if isinstance(key, typing.Hashable):
                seen[key] = key_node.start_mark.line + 1
        return super().construct_mapping(node, deep)


# YAML 1.2 floats without a dot (``1e-05``): what DVC's round-trip writer puts in params.yaml
# for ``dvc exp run -S train.learning_rate=1e-5``. PyYAML reads YAML 1.1, where that is a
# string, and the strict loader would then refuse the number DVC meant.
_UniqueKeyLoader.add_implicit_resolver(
    "tag:yaml.org,2002:float",
    re.compile(r"^[-+]?[0-9][0-9_]*[eE][-+]?[0-9]+$"),
    list("-+0123456789"),
)


def load_params(path: str | Path = PARAMS_FILE) -> dict[str, Any]:
    """Load the whole params file as a mapping."""
    path = Path(path)
    if not path.is_file():
        raise ParamsError(f"{path}: params file not found (run the stage from the repo root)")
    with path.open(encoding="utf-8") as fh:
        try:
            data = yaml.load(fh, Loader=_UniqueKeyLoader) or {}  # noqa: S506 (a SafeLoader)
        except yaml.MarkedYAMLError as exc:
            raise ParamsError(f"{path}: {exc}") from None
    if not isinstance(data, dict):
        raise ParamsError(f"{path}: expected a mapping of sections at the top level")
    return data


def _with_shared(cls: type, raw: dict[str, Any], root: dict[str, Any], where: str) -> dict:
    """``raw`` (one use's keys) over ``cls``'s shared top-level section, when it has one.

    ``where`` is ``"<file>: <dotted name>"``. A key of the shared section that ``cls`` does not
    know is named there (one the use does not know, or lacks, by :func:`_build`).
    """
    name = getattr(cls, "SHARED_SECTION", None)
    if name is None:
        return raw
    path, _, use = where.partition(": ")
    shared = root.get(name)
    if not isinstance(shared, dict):
        raise ParamsError(
            f"{path}: missing section {name!r} (the {cls.__name__} that {use} overrides)"
        )
    fields = [f.name for f in dataclasses.fields(cls)]
    unknown = sorted(set(shared) - set(fields))
    if unknown:
        raise ParamsError(
            f"{path}: {name}: unknown key(s) {', '.join(unknown)}; known keys: "
            f"{', '.join(sorted(fields))}"
        )
    return {**shared, **raw}


def _coerce(value: Any, annotation: Any, where: str, root: dict[str, Any]) -> Any:
    """Check ``value`` against a simple type annotation, converting int to float where asked.

    ``root`` is the whole params file (a shared section's home, see :func:`_with_shared`).
    """
    origin = typing.get_origin(annotation)
    args = typing.get_args(annotation)
    if annotation is Any:
        return value
    if origin in (typing.Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        errors = []
        for arg in args:
            if arg is type(None):
                continue
            try:
                return _coerce(value, arg, where, root)
            except ParamsError as exc:
                errors.append(str(exc))
        raise ParamsError(errors[0] if errors else f"{where}: unexpected value {value!r}")
    if origin in (list, tuple):
        if not isinstance(value, list | tuple):
            raise ParamsError(f"{where}: expected a list, got {value!r}")
        inner = args[0] if args else Any
        return [_coerce(v, inner, f"{where}[{i}]", root) for i, v in enumerate(value)]
    if origin is dict:
        if not isinstance(value, dict):
            raise ParamsError(f"{where}: expected a mapping, got {value!r}")
        inner = args[1] if len(args) == 2 else Any
        return {k: _coerce(v, inner, f"{where}.{k}", root) for k, v in value.items()}
    if dataclasses.is_dataclass(annotation):
        if not isinstance(value, dict):
            raise ParamsError(f"{where}: expected a mapping, got {value!r}")
        return _build(annotation, value, where, root)
    if annotation is float:
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise ParamsError(f"{where}: expected a number, got {value!r}")
        return float(value)
    if annotation is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise ParamsError(f"{where}: expected an integer, got {value!r}")
        return value
    if annotation is bool:
        if not isinstance(value, bool):
            raise ParamsError(f"{where}: expected true or false, got {value!r}")
        return value
    if annotation is str:
        if not isinstance(value, str):
            raise ParamsError(f"{where}: expected a string, got {value!r}")
        return value
    return value


def _build(
    cls: type[T], raw: dict[str, Any], where: str, root: dict[str, Any], subset: bool = False
) -> T:
    hints = typing.get_type_hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls)}  # type: ignore[arg-type]
    raw = _with_shared(cls, raw, root, where)
    if subset:
        raw = {k: v for k, v in raw.items() if k in fields}
    unknown = sorted(set(raw) - set(fields))
    if unknown:
        raise ParamsError(
            f"{where}: unknown key(s) {', '.join(unknown)}; known keys: {', '.join(sorted(fields))}"
        )
    kwargs: dict[str, Any] = {}
    for name, field in fields.items():
        if name in raw:
            kwargs[name] = _coerce(raw[name], hints[name], f"{where}.{name}", root)
        elif field.default is dataclasses.MISSING and field.default_factory is dataclasses.MISSING:
            shared = getattr(cls, "SHARED_SECTION", None)
            also = f" (in neither {shared} nor {where.partition(': ')[2]})" if shared else ""
            raise ParamsError(f"{where}: missing required key {name!r}{also}")
    try:
        return cls(**kwargs)
    except ParamsError:
        raise
    except ValueError as exc:  # a bound in __post_init__: say which section broke it
        raise ParamsError(f"{where}: {exc}") from None


def section(name: str, cls: type[T], path: str | Path = PARAMS_FILE, subset: bool = False) -> T:
    """Return section ``name`` of the params file as an instance of the dataclass ``cls``.

    ``name`` may be dotted (``ingest.measure``): a nested mapping, named as in dvc.yaml's
    ``params:`` lists. ``subset=True`` is for a stage that reads a few keys of a section another
    stage owns (that stage checks the section strictly); its other keys are then not this
    stage's concern.
    """
    root = load_params(path)
    raw: Any = root
    walked: list[str] = []
    for part in name.split("."):
        if not isinstance(raw, dict) or part not in raw:
            raise ParamsError(f"{path}: missing section {'.'.join([*walked, part])!r}")
        raw = raw[part]
        walked.append(part)
    if raw is None:
        raw = {}
    if not isinstance(raw, dict):
        raise ParamsError(f"{path}: section {name!r} must be a mapping")
    return _build(cls, raw, f"{path}: {name}", root, subset=subset)
