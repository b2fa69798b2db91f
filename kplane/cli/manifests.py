"""Reading manifests the way kubectl does: files, directories, `-` for stdin, multi-document
YAML separated by `---`, JSON, and `kind: List` expanded into its items."""

from __future__ import annotations

import json
import sys
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

try:
    _Loader: Any = yaml.CSafeLoader
except AttributeError:  # pragma: no cover - libyaml missing
    _Loader = yaml.SafeLoader

MANIFEST_SUFFIXES = (".yaml", ".yml", ".json")


class ManifestError(Exception):
    """A file that cannot be read or parsed; the message names the file and the problem."""


@dataclass
class Manifest:
    source: str  # file name or "STDIN"
    index: int  # document number within the source
    obj: dict[str, Any]


def _files(path: str, recursive: bool) -> list[Path]:
    p = Path(path)
    if not p.exists():
        raise ManifestError(f'the path "{path}" does not exist')
    if p.is_dir():
        pattern = "**/*" if recursive else "*"
        files = sorted(f for f in p.glob(pattern) if f.is_file() and f.suffix in MANIFEST_SUFFIXES)
        if not files:
            raise ManifestError(f'error reading "{path}": no manifest files (.yaml, .yml, .json) in the directory')
        return files
    return [p]


def parse_documents(text: str, source: str) -> list[dict[str, Any]]:
    """Parse YAML (possibly several documents) or JSON; empty documents are skipped."""
    try:
        docs = list(yaml.load_all(text, Loader=_Loader))
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"line {mark.line + 1}, column {mark.column + 1}: " if mark is not None else ""
        problem = getattr(exc, "problem", None) or str(exc)
        raise ManifestError(f'error parsing {source}: error converting YAML to JSON: yaml: {where}{problem}') from None
    out: list[dict[str, Any]] = []
    for i, doc in enumerate(docs):
        if doc is None:
            continue
        if not isinstance(doc, dict):
            raise ManifestError(f"error parsing {source} (document {i + 1}): a manifest must be a mapping, "
                                f"got {type(doc).__name__}")
        doc = _jsonable(doc)
        if doc.get("kind") == "List" and isinstance(doc.get("items"), list):
            out.extend(item for item in doc["items"] if isinstance(item, dict))
        else:
            out.append(doc)
    return out


def _jsonable(value: Any) -> Any:
    """YAML may produce dates and non-string keys; Kubernetes sees JSON, so normalise."""
    if isinstance(value, dict):
        return {str(k) if not isinstance(k, str) else k: _jsonable(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_jsonable(v) for v in value]
    if hasattr(value, "isoformat") and not isinstance(value, (str, int, float, bool)):
        text = value.isoformat()
        return text if "T" not in text or text.endswith("Z") or "+" in text else text + "Z"
    return value


def load(paths: Iterable[str], *, recursive: bool = False, stdin: Any = None) -> list[Manifest]:
    manifests: list[Manifest] = []
    for path in paths:
        if path == "-":
            text = (stdin or sys.stdin).read()
            sources = [("STDIN", text)]
        else:
            sources = []
            for f in _files(path, recursive):
                try:
                    sources.append((str(f), f.read_text()))
                except (OSError, UnicodeDecodeError) as exc:
                    raise ManifestError(f'error reading "{f}": {exc}') from None
        for source, text in sources:
            for i, doc in enumerate(parse_documents(text, source)):
                manifests.append(Manifest(source, i, doc))
    if not manifests:
        raise ManifestError("no objects passed to apply" if paths else "must specify one of -f and -k")
    return manifests


def dump_yaml(obj: Any) -> str:
    try:
        dumper: Any = yaml.CSafeDumper
    except AttributeError:  # pragma: no cover
        dumper = yaml.SafeDumper
    return yaml.dump(obj, Dumper=dumper, sort_keys=False, default_flow_style=False, allow_unicode=True)


def to_json(obj: Any) -> str:
    return json.dumps(obj, indent=4)
