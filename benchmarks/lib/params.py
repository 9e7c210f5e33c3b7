"""Helpers the benchmark scripts share: params changed as ``dvc exp run -S`` changes them."""

from __future__ import annotations

import argparse

import yaml


def add_set_argument(parser: argparse.ArgumentParser, help: str) -> None:
    """``--set KEY=VALUE`` (repeatable; a YAML value), like ``dvc exp run -S``."""
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help=help)


def parse_sets(items: list[str]) -> dict[str, object]:
    """``["a.b=1", "c=[x,y]"]`` -> ``{"a.b": 1, "c": ["x", "y"]}``."""
    return {k: yaml.safe_load(v) for k, v in (item.split("=", 1) for item in items)}


def set_dotted(params: dict, dotted: str, value: object) -> None:
    """``params[a][b][c] = value`` for ``a.b.c``; a key params.yaml lacks is a KeyError."""
    *parents, leaf = dotted.split(".")
    node = params
    for part in parents:
        node = node[part]
    if leaf not in node:
        raise KeyError(f"params.yaml has no {dotted}")
    node[leaf] = value
