"""One ``Registry`` type for every extension point (architectures, trainers, dataset loaders,
evaluation protocols, post-processing steps, backbone sources, loss terms, commands).

A registry maps names to objects. It refuses a second object under a taken name, answers an unknown
name with the closest known ones, and lists its names. Nothing is listed by hand: a registry may be
given a ``discover(name)`` hook that imports the modules able to register ``name`` (``name`` is
None when every name is wanted, e.g. for a listing), and every registry also imports the modules
that installed packages declare in the entry-point group ``reid_ensemble.plugins``, so a third-party
package registers its own things without editing this one::

    # the plugin's setup.cfg
    [options.entry_points]
    reid_ensemble.plugins =
        my_plugin = my_package.reid_plugin    # a module whose import runs @REGISTRY.register(...)

Torch-free (``post_processing`` imports it too).
"""
from __future__ import annotations

import difflib
import importlib
import pkgutil
from typing import Callable, Dict, Generic, Iterator, List, Optional, Tuple, TypeVar

from .errors import ReidError, ReidUsageError

__all__ = ["PLUGIN_GROUP", "Registry", "RegistryError", "UnknownNameError", "import_submodules", "load_plugins",
           "module_registry"]

PLUGIN_GROUP = "reid_ensemble.plugins"

T = TypeVar("T")


class RegistryError(ReidError):
    """A name registered twice with different objects, or a plugin that fails to import."""


class UnknownNameError(ReidUsageError, LookupError):
    """A name no registry entry has; the message lists the closest known names."""


_loaded_plugins: set = set()


def load_plugins() -> None:
    """Import every module of the ``reid_ensemble.plugins`` entry-point group not imported yet."""
    from importlib.metadata import entry_points

    for ep in entry_points(group=PLUGIN_GROUP):
        if (ep.name, ep.value) in _loaded_plugins:
            continue
        _loaded_plugins.add((ep.name, ep.value))
        try:
            ep.load()
        except ImportError as exc:
            raise RegistryError(f"plugin {ep.name!r} ({ep.value}, entry-point group {PLUGIN_GROUP}) "
                                f"cannot be imported: {exc}") from exc


def import_submodules(package: str) -> None:
    """Import every module of ``package`` whose name does not start with ``_`` (they register on import)."""
    pkg = importlib.import_module(package)
    for info in pkgutil.iter_modules(pkg.__path__):
        if not info.name.startswith("_"):
            importlib.import_module(f"{package}.{info.name}")


class Registry(Generic[T]):
    """Names → objects of one ``kind`` (e.g. ``"dataset"``), filled by ``@registry.register(name)``.

    ``discover(name)`` (optional) imports what can register ``name``, or everything for ``None``; it
    runs before a lookup of a missing name fails and before a listing.
    """

    def __init__(self, kind: str, discover: Optional[Callable[[Optional[str]], None]] = None):
        self.kind = kind
        self._objs: Dict[str, T] = {}
        self._discover = discover
        self._discovered_all = False

    # ------------------------------------------------------------------ registration
    def register(self, name: Optional[str] = None, obj: Optional[T] = None):
        """``@registry.register("name")`` (or ``register()``: the object's ``__name__``), or
        ``registry.register("name", obj)``. Re-registering the very same object is a no-op."""

        def add(o: T) -> T:
            key = name if name is not None else getattr(o, "__name__", None)
            if not key or not isinstance(key, str):
                raise RegistryError(f"{self.kind} registry: {o!r} needs a name")
            old = self._objs.get(key)
            if old is not None and old is not o and not _same_definition(old, o):
                raise RegistryError(f"{self.kind} {key!r} is registered twice: {_where(old)} and {_where(o)}")
            self._objs[key] = o
            return o

        return add(obj) if obj is not None else add

    def unregister(self, name: str) -> None:
        """Remove ``name`` (tests that register a throw-away entry clean up with it)."""
        self._objs.pop(name, None)

    # ------------------------------------------------------------------ lookup
    def get(self, name: str) -> T:
        """The object registered as ``name``; an unknown name raises with the closest known names."""
        if name not in self._objs:
            self._find(name)
        if name not in self._objs:
            known = self.names()
            close = difflib.get_close_matches(name, known, n=3, cutoff=0.5)
            hint = f"; did you mean {', '.join(repr(c) for c in close)}?" if close else ""
            raise UnknownNameError(f"unknown {self.kind} {name!r}{hint} (known: {', '.join(known) or 'none'})")
        return self._objs[name]

    def find(self, name: str) -> Optional[T]:
        """The object registered as ``name`` (after discovery), or None: for optional entries such as a
        family's config extension."""
        if name not in self._objs:
            self._find(name)
        return self._objs.get(name)

    def names(self) -> List[str]:
        """Every registered name, sorted (after discovery)."""
        if not self._discovered_all:
            self._discovered_all = True
            self._find(None)
        return sorted(self._objs)

    def items(self) -> List[Tuple[str, T]]:
        """``(name, object)`` pairs sorted by name (after discovery)."""
        return [(n, self._objs[n]) for n in self.names()]

    def __contains__(self, name: object) -> bool:
        return name in self._objs

    def __iter__(self) -> Iterator[str]:
        return iter(self.names())

    def __len__(self) -> int:
        return len(self.names())

    def __repr__(self) -> str:
        return f"Registry({self.kind!r}, {len(self._objs)} entries)"

    def _find(self, name: Optional[str]) -> None:
        if self._discover is not None:
            self._discover(name)
        if name is None or name not in self._objs:
            load_plugins()


def _same_definition(a: object, b: object) -> bool:
    """A module imported twice (e.g. as a script and as a package) re-defines the same object."""
    qa = (getattr(a, "__module__", None), getattr(a, "__qualname__", None))
    return qa[1] is not None and qa == (getattr(b, "__module__", None), getattr(b, "__qualname__", None))


def _where(obj: object) -> str:
    mod, qual = getattr(obj, "__module__", None), getattr(obj, "__qualname__", None)
    return f"{mod}.{qual}" if mod and qual else repr(obj)


def module_registry(kind: str, package: str) -> "Registry":
    """A registry of the modules of ``package`` (one per name, ``_`` in the module name read as ``-``),
    imported only when looked up or listed: the command packages of both CLIs."""

    def discover(name: Optional[str]) -> None:
        pkg = importlib.import_module(package)
        for info in pkgutil.iter_modules(pkg.__path__):
            if info.name.startswith("_") or (name is not None and info.name != name.replace("-", "_")):
                continue
            module = importlib.import_module(f"{package}.{info.name}")
            registry.register(info.name.replace("_", "-"), module)

    registry: Registry = Registry(kind, discover=discover)
    return registry
