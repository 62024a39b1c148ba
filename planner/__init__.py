"""planner: capacity planning and cost optimization for disaggregated LLM inference.

The library's door is :mod:`planner.api` (one module per command); ``planner.cli`` is a thin typer layer over it.
"""

from __future__ import annotations

import importlib
import importlib.abc
import importlib.machinery
import sys
import warnings
from types import ModuleType

__version__ = "0.1.0"
__distribution__ = "planner-disagg"  # the PyPI name (planner there is another project); planner.cli checks it

# Modules that moved into a package (issue 16); the old import paths keep working, with a DeprecationWarning.
MOVED_MODULES = {
    "planner.microbench": "planner.calibrate.microbench",
    "planner.powersample": "planner.calibrate.powersample",
    "planner.powerfit": "planner.calibrate.powerfit",
    "planner.opfit": "planner.calibrate.opfit",
    "planner.engine_fit": "planner.calibrate.engine_fit",
    "planner.synth": "planner.sim.synth",
    "planner.sweep": "planner.api.sweep",
}


class _MovedModuleLoader(importlib.abc.Loader):
    def create_module(self, spec: importlib.machinery.ModuleSpec) -> ModuleType:
        new = MOVED_MODULES[spec.name]
        warnings.warn(f"{spec.name} moved to {new}; import it from there", DeprecationWarning, stacklevel=2)
        return importlib.import_module(new)

    def exec_module(self, module: ModuleType) -> None:  # the module under its new name is already executed
        pass


class _MovedModuleFinder(importlib.abc.MetaPathFinder):
    def find_spec(self, fullname: str, path: object = None, target: object = None) -> importlib.machinery.ModuleSpec | None:
        if fullname in MOVED_MODULES:
            return importlib.machinery.ModuleSpec(fullname, _MovedModuleLoader())
        return None


if not any(isinstance(f, _MovedModuleFinder) for f in sys.meta_path):
    sys.meta_path.append(_MovedModuleFinder())
