"""Finding every exception class a package defines, for the tests that check each package's exception tree."""

from __future__ import annotations

import importlib
import inspect
import pkgutil
from types import ModuleType


def defined_in_package(package: ModuleType, skip: tuple[str, ...] = ()) -> set[type[BaseException]]:
    found: set[type[BaseException]] = set()
    for info in pkgutil.walk_packages(package.__path__, prefix=f"{package.__name__}."):
        if info.name in skip:
            continue
        module = importlib.import_module(info.name)
        for _, obj in inspect.getmembers(module, inspect.isclass):
            if issubclass(obj, BaseException) and obj.__module__ == module.__name__:
                found.add(obj)
    return found
