"""What the sdist ships, read from MANIFEST.in (building one needs setuptools
from the network; tox's ``package`` environment builds it)."""

from .processes import ROOT


def manifest_directives():
    lines = (ROOT / "MANIFEST.in").read_text().splitlines()
    return [line.split() for line in lines if line.strip() and not line.startswith("#")]


def test_the_sdist_ships_the_example_project_the_tests_serve():
    # tests/test_e2e.py and tests/test_browser.py put example_project on PYTHONPATH.
    about_it = [d for d in manifest_directives() if "example_project" in d[1:]]
    assert about_it and about_it[-1][0] == "graft", about_it  # the last word wins
    assert (ROOT / "example_project" / "manage.py").exists()


def test_the_sdist_leaves_out_databases_and_bytecode():
    [excluded] = [d[1:] for d in manifest_directives() if d[0] == "global-exclude"]
    for pattern in ("__pycache__", "*.py[cod]", "*.sqlite3", "*.sqlite3-journal"):
        assert pattern in excluded


def setup_py_function(name):
    """A function of setup.py, without running setup()."""
    import ast
    import re
    from pathlib import Path

    source = (ROOT / "setup.py").read_text()
    tree = ast.parse(source)
    wanted = [
        node
        for node in tree.body
        if (isinstance(node, ast.FunctionDef) and node.name == name)
        or (isinstance(node, ast.Assign) and node.targets[0].id in ("RELATIVE_LINK", "HERE"))
    ]
    namespace = {"re": re, "Path": Path, "__file__": str(ROOT / "setup.py")}
    exec(compile(ast.Module(wanted, type_ignores=[]), "setup.py", "exec"), namespace)
    return namespace[name]


def test_the_index_page_has_no_links_relative_to_the_repository():
    import re

    text = setup_py_function("long_description")()
    relative = re.findall(r"\]\((?!https?://|mailto:|#)[^)]*\)", text)
    assert relative == []
    assert "[docs/client.md](docs/client.md)" not in text
    assert "- `docs/protocol.md`: the wire protocol, v1." in text
    assert "the [example project](example_project/)" not in text
    assert "the example project (`example_project/`)" in text
    assert "(`docs/protocol.md#server-sent-events`)" in text
    assert "[Django Channels](https://channels.readthedocs.io/)" in text  # absolute: kept
