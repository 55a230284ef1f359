"""The type stub _core.pyi names exactly what the compiled module has (kept in sync by hand)."""

import ast
from pathlib import Path

import foxml_events as fe
from foxml_events import _core

STUB = Path(fe.__file__).parent / "_core.pyi"
HELPERS = {"Number"}  # stub-only aliases


def stub_names():
    tree = ast.parse(STUB.read_text())
    names, members = set(), {}
    for node in tree.body:
        if isinstance(node, (ast.FunctionDef, ast.ClassDef)):
            names.add(node.name)
        elif isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name):
            names.add(node.target.id)
        elif isinstance(node, ast.Assign):
            names.update(t.id for t in node.targets if isinstance(t, ast.Name))
        if isinstance(node, ast.ClassDef):
            members[node.name] = {n.name for n in node.body if isinstance(n, ast.FunctionDef)}
    return names - HELPERS, members


def test_stub_matches_the_module():
    names, members = stub_names()
    public = {n for n in dir(_core) if not n.startswith("__")} | {"__version__"}
    assert names - public == set(), "in the stub, not in the module"
    assert public - names == set(), "in the module, not in the stub"
    for cls, methods in members.items():
        missing = {m for m in methods if not hasattr(getattr(_core, cls), m)}
        assert missing == set(), f"{cls}: {missing}"


def test_public_reader_names_are_exported():
    for name in ["EventReader", "EventBuffer", "RunTracker", "BufferRead", "follow", "default_event_socket",
                 "default_sink_list"]:
        assert name in fe.__all__ and hasattr(fe, name)
