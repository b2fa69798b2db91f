"""Regenerate kplane/api/pb from proto/ (`make proto`).

Produces `<name>_pb2.py`, `<name>_pb2.pyi` (mypy-protobuf), `<name>_pb2_grpc.py` and
`schema.binpb`, a FileDescriptorSet *with source info* so `kpctl explain` can show the proto comments.
`python -m kplane.api.protogen --check` regenerates into a temporary directory and exits 1 when
the committed files differ (a test runs it, so stale generated code fails CI).
"""

from __future__ import annotations

import argparse
import filecmp
import os
import shutil
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PROTO_ROOT = ROOT / "proto"
PB_DIR = ROOT / "kplane" / "api" / "pb"
PROTO_PACKAGE_DIR = PROTO_ROOT / "kplane" / "api" / "pb"


def _protos() -> list[str]:
    return sorted(str(p.relative_to(PROTO_ROOT)) for p in PROTO_PACKAGE_DIR.glob("*.proto"))


def generate(out_root: Path) -> None:
    """Run protoc for every .proto into out_root (which mirrors the repo root)."""
    import grpc_tools
    from grpc_tools import protoc  # dev dependency: only needed to regenerate

    include = Path(grpc_tools.__file__).parent / "_proto"
    (out_root / "kplane" / "api" / "pb").mkdir(parents=True, exist_ok=True)
    protos = _protos()
    args = [
        "protoc",
        f"-I{PROTO_ROOT}",
        f"-I{include}",
        f"--python_out={out_root}",
        f"--grpc_python_out={out_root}",
        f"--plugin=protoc-gen-mypy={Path(sys.executable).parent / 'protoc-gen-mypy'}",
        f"--mypy_out=quiet:{out_root}",
        f"--descriptor_set_out={out_root / 'kplane' / 'api' / 'pb' / 'schema.binpb'}",
        "--include_source_info",
        "--include_imports",
        *protos,
    ]
    old_cwd = os.getcwd()
    os.chdir(PROTO_ROOT)
    try:
        rc = protoc.main(args)
    finally:
        os.chdir(old_cwd)
    if rc != 0:
        raise SystemExit(f"protoc failed with exit code {rc}")
    init = out_root / "kplane" / "api" / "pb" / "__init__.py"
    init.write_text('"""Generated protobuf code: do not edit; run `make proto`."""\n')


def _generated_files(directory: Path) -> set[str]:
    return {p.name for p in directory.iterdir() if p.is_file() and not p.name.endswith(".pyc")}


def check() -> int:
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp)
        generate(out)
        fresh_dir = out / "kplane" / "api" / "pb"
        fresh = _generated_files(fresh_dir)
        committed = _generated_files(PB_DIR) if PB_DIR.exists() else set()
        stale = sorted(fresh ^ committed)
        stale += sorted(
            name for name in fresh & committed if not filecmp.cmp(fresh_dir / name, PB_DIR / name, shallow=False)
        )
        if stale:
            print("generated code is stale; run `make proto`: " + ", ".join(stale), file=sys.stderr)
            return 1
    return 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--check", action="store_true", help="exit 1 if the committed code is stale")
    ns = parser.parse_args()
    if ns.check:
        return check()
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp)
        generate(out)
        if PB_DIR.exists():
            shutil.rmtree(PB_DIR)
        shutil.copytree(out / "kplane" / "api" / "pb", PB_DIR)
    print(f"regenerated {PB_DIR.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
