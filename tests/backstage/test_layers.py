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
