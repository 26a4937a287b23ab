"""The one Registry type: duplicates refused, unknown names answered with close matches, discovery
by hook and by the ``reid_ensemble.plugins`` entry-point group."""
import sys

import pytest

from post_processing.errors import ReidUsageError, exit_code
from post_processing.registry import Registry, RegistryError, UnknownNameError, import_submodules


def test_register_get_and_list():
    reg = Registry("widget")

    @reg.register("b")
    def b():
        return "b"

    reg.register("a", len)
    assert reg.get("b") is b
    assert reg.names() == ["a", "b"]
    assert "a" in reg and "c" not in reg
    assert reg.items() == [("a", len), ("b", b)]


def test_duplicate_name_is_refused_but_the_same_object_is_not():
    reg = Registry("widget")
    reg.register("x", len)
    reg.register("x", len)  # idempotent
    with pytest.raises(RegistryError, match="widget 'x' is registered twice"):
        reg.register("x", sum)


def test_unknown_name_lists_close_matches_and_is_a_usage_error():
    reg = Registry("dataset")
    for name in ("market1501", "veri776", "vehicleid"):
        reg.register(name, object())
    with pytest.raises(UnknownNameError, match=r"unknown dataset 'market150'; did you mean 'market1501'") as info:
        reg.get("market150")
    assert "known: market1501, vehicleid, veri776" in str(info.value)
    assert isinstance(info.value, ReidUsageError) and exit_code(info.value) == 2


def test_discover_hook_runs_on_a_miss_and_for_a_listing():
    calls = []
    reg = Registry("thing", discover=lambda name: (calls.append(name), reg.register("late", str)))
    assert reg.get("late") is str
    assert calls == ["late"]
    reg.unregister("late")
    assert reg.names() == ["late"]
    assert calls == ["late", None]


def test_import_submodules_imports_a_package(tmp_path, monkeypatch):
    pkg = tmp_path / "regpkg_demo"
    pkg.mkdir()
    (pkg / "__init__.py").write_text("from post_processing.registry import Registry\nREG = Registry('demo')\n")
    (pkg / "one.py").write_text("from . import REG\nREG.register('one', 1)\n")
    (pkg / "_private.py").write_text("raise RuntimeError('not imported')\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    import_submodules("regpkg_demo")
    assert sys.modules["regpkg_demo"].REG.names() == ["one"]


def test_entry_point_plugin_registers_without_editing_the_project(tmp_path, monkeypatch):
    (tmp_path / "my_reid_plugin.py").write_text(
        "from post_processing.registry import Registry\nimport test_registry\n"
        "test_registry.PLUGGED.register('from_plugin', 42)\n")
    dist = tmp_path / "my_reid_plugin-1.0.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: my-reid-plugin\nVersion: 1.0\n")
    (dist / "entry_points.txt").write_text("[reid_ensemble.plugins]\nmine = my_reid_plugin\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    assert PLUGGED.get("from_plugin") == 42


PLUGGED = Registry("plugged")
