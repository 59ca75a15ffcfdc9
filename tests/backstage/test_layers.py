"""The import structure: no circle anywhere in `backstage/` or `emperor/` (the layers
themselves are an import-linter contract in pyproject.toml, checked by `.ci/run`)."""

from __future__ import annotations

import grimp


def test_no_import_circle():
    graph = grimp.build_graph("backstage", "emperor", exclude_type_checking_imports=True)
    circles = sorted(
        (importer, imported)
        for importer in graph.modules
        for imported in graph.find_modules_directly_imported_by(importer)
        if graph.chain_exists(importer=imported, imported=importer)
    )
    assert circles == []


# What reaches the host from the model: its modules call none of these.
HOST_CALLS = {"open", "walk", "listdir", "scandir", "stat", "lstat", "isfile", "isdir",
              "exists", "getpwnam", "getpwuid", "getgrnam", "Popen", "socket"}  # fmt: skip


def test_the_model_reads_no_files():
    import ast
    import pathlib

    import backstage.model

    folder = pathlib.Path(backstage.model.__file__).parent
    found = []
    for path in sorted(folder.glob("*.py")):
        tree = ast.parse(path.read_text(), str(path))
        for node in ast.walk(tree):
            if isinstance(node, ast.Call):
                name = getattr(node.func, "attr", None) or getattr(node.func, "id", None)
                owner = getattr(getattr(node.func, "value", None), "id", None)
                if name in HOST_CALLS and owner != "ast":  # ast.walk walks a tree
                    found.append(f"{path.name}:{node.lineno} {name}()")
            elif isinstance(node, (ast.Import, ast.ImportFrom)):
                names = [a.name for a in node.names] + [getattr(node, "module", None) or ""]
                found += [f"{path.name}:{node.lineno} import {n}" for n in names if n in
                          ("pwd", "grp", "subprocess", "socket", "shutil")]  # fmt: skip
    assert found == []
