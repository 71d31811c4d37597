"""House rules that keep the design honest (see docs/decisions.md)."""
import ast
from pathlib import Path

import pytest

from core.config import SETTINGS

ROOT = Path(__file__).resolve().parent.parent


def imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(), filename=str(path))
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names |= {a.name.split(".")[0] for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module.split(".")[0])
    return names


CORE = sorted((ROOT / "core").rglob("*.py"))
PAGES = sorted((ROOT / "pages").glob("*.py"))


@pytest.mark.parametrize("path", CORE, ids=[str(p.relative_to(ROOT)) for p in CORE])
def test_core_never_imports_streamlit(path):
    assert "streamlit" not in imports(path)


@pytest.mark.parametrize("path", PAGES, ids=[p.name for p in PAGES])
def test_pages_are_thin_views(path):
    used = imports(path)
    assert "sqlalchemy" not in used and "sqlite3" not in used, "pages never run SQL"
    assert 'auth.require_page("' in path.read_text(), "every page guards itself"


def test_every_page_file_is_in_the_registry_and_the_roles_matrix():
    from core.security.roles import PAGES as ROLE_PAGES
    from ui.nav import PAGES as NAV
    files = {p.name for p in PAGES}
    registered = {Path(p.path).name for p in NAV}
    assert files <= registered
    assert {p.key for p in NAV} <= set(ROLE_PAGES)


def test_every_setting_is_documented_in_the_readme():
    readme = (ROOT / "README.md").read_text()
    missing = [name for name in SETTINGS if name not in readme]
    assert not missing, f"undocumented settings: {missing}"


@pytest.mark.parametrize("dotted", [
    "core.floorplan.FloorPlan.from_geojson", "core.floorplan.FloorPlan.locate",
    "core.alarms.vitals.news2", "core.fhir.load", "core.locate.estimate_positions",
    "core.proximity.read_sociopatterns", "core.proximity.exposures"])
def test_public_interfaces_exist_and_are_in_the_readme(dotted):
    import importlib
    mod, *attrs = dotted.split(".")
    obj, path = None, mod
    for part in dotted.split(".")[1:]:
        try:
            obj = importlib.import_module(f"{path}.{part}")
        except ModuleNotFoundError:
            obj = getattr(obj if obj is not None else importlib.import_module(path), part)
        path = f"{path}.{part}"
    assert callable(obj)
    short = ".".join(dotted.split(".")[-2:]) if dotted.split(".")[-2][0].isupper() else dotted.split(".")[-1]
    assert short in (ROOT / "README.md").read_text()
