"""On PYTHONPATH, makes matplotlib (the optional 'report' extra) look uninstalled."""

import sys
from importlib.machinery import ModuleSpec


class _NoMatplotlib:
    def find_spec(self, name: str, path: object = None, target: object = None) -> ModuleSpec | None:
        if name == "matplotlib" or name.startswith("matplotlib."):
            raise ModuleNotFoundError(f"No module named {name!r}", name=name)
        return None


sys.meta_path.insert(0, _NoMatplotlib())
