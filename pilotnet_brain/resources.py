"""Locate the package's data files (``config/*.yaml``, ``launch/*.py``, ``package.xml``).

The same files live in different places depending on how the package was installed:

* colcon (ament_python):   ``<prefix>/share/pilotnet_brain``, found through the ament index;
* pip, non-editable:        ``<sys.prefix>/share/pilotnet_brain`` (setup.py's ``data_files``);
* source checkout / ``pip install -e``: the repository root, next to the ``pilotnet_brain/`` dir.

Which one applies is decided from where *this module* was imported from, so a stale colcon
workspace on ``AMENT_PREFIX_PATH`` does not shadow the files of the checkout you are editing.
The other places are still searched as fallbacks, in order. Pure Python: the ament index is only
imported on first use, and ROS is not needed at all.
"""

from __future__ import annotations

import os
import site
import sys
from pathlib import Path
from typing import List, Optional, Tuple

PACKAGE = "pilotnet_brain"

__all__ = ["PACKAGE", "share_dir", "config_path", "launch_path", "search_dirs"]

# The directory holding this package's modules (…/site-packages/pilotnet_brain or <repo>/pilotnet_brain).
_PKG_DIR = Path(__file__).resolve().parent


def _ament_share_dir() -> Optional[Path]:
    """The share directory the ament index knows for this package, or None (no ROS, not indexed)."""
    try:
        from ament_index_python.packages import get_package_share_directory  # noqa: PLC0415  (optional: ROS ament index)
    except ImportError:
        return None
    try:
        return Path(get_package_share_directory(PACKAGE))
    except Exception:  # PackageNotFoundError (a KeyError), EnvironmentError when AMENT_PREFIX_PATH is unset
        return None


def _source_root() -> Optional[Path]:
    """The repository root if this module runs from a source checkout (plain or ``pip install -e``)."""
    root = _PKG_DIR.parent
    if (root / "package.xml").is_file() and (root / "setup.py").is_file():
        return root
    return None


def _is_within(path: Path, parent: Path) -> bool:
    try:
        path.resolve().relative_to(parent.resolve())
    except (ValueError, OSError):
        return False
    return True


def search_dirs() -> List[Tuple[str, Path]]:
    """Candidate share directories, best first, as ``(how it was found, directory)``.

    The directories need not exist; :func:`share_dir` and friends pick the first that has the file.
    """
    ament = _ament_share_dir()
    source = _source_root()
    prefixes = [Path(sys.prefix)]
    user_base = getattr(site, "USER_BASE", None) or ""
    if user_base and Path(user_base) != Path(sys.prefix):
        prefixes.append(Path(user_base))  # pip install --user
    pip_dirs = [("pip data_files (%s/share)" % p, p / "share" / PACKAGE) for p in prefixes]

    # colcon install: the module sits in <prefix>/lib/pythonX.Y/site-packages and the ament index
    # points at <prefix>/share/pilotnet_brain (same prefix).
    ament_owns_us = ament is not None and _is_within(_PKG_DIR, ament.parent.parent)
    pip_owns_us = any(_is_within(_PKG_DIR, p) for p in prefixes) and source is None

    ordered: List[Tuple[str, Path]] = []
    if ament is not None and ament_owns_us:
        ordered.append(("ament index", ament))
    if source is not None:
        ordered.append(("source tree", source))
    if pip_owns_us:
        ordered.extend(pip_dirs)
    if ament is not None and not ament_owns_us:
        ordered.append(("ament index", ament))
    ordered.extend(pip_dirs)  # duplicates are dropped below

    seen = set()
    unique = []
    for how, path in ordered:
        key = os.path.normcase(str(path))
        if key not in seen:
            seen.add(key)
            unique.append((how, path))
    return unique


def _not_found(what: str, places: List[Tuple[str, Path]]) -> FileNotFoundError:
    listing = "\n".join("  - %s: %s" % (how, path) for how, path in places) or "  (nowhere)"
    return FileNotFoundError("%s of package %r not found; searched:\n%s" % (what, PACKAGE, listing))


def share_dir() -> Path:
    """The package's share directory (holds ``package.xml``, ``config/``, ``launch/``)."""
    dirs = search_dirs()
    for _, path in dirs:
        if (path / "package.xml").is_file():
            return path
    for _, path in dirs:  # a share dir without package.xml still beats nothing
        if path.is_dir():
            return path
    raise _not_found("share directory", dirs)


def _data_path(subdir: str, name: str) -> Path:
    rel = Path(name)
    if rel.is_absolute() or ".." in rel.parts or not rel.parts:
        raise ValueError("expected a file name relative to %s/, got %r" % (subdir, name))
    dirs = search_dirs()
    for _, path in dirs:
        candidate = path / subdir / rel
        if candidate.is_file():
            return candidate
    raise _not_found("%s/%s" % (subdir, name), [(how, path / subdir / rel) for how, path in dirs])


def config_path(name: str) -> Path:
    """Path of ``config/<name>`` (e.g. ``config_path("simulation.yaml")``)."""
    return _data_path("config", name)


def launch_path(name: str) -> Path:
    """Path of ``launch/<name>`` (e.g. ``launch_path("drive.launch.py")``)."""
    return _data_path("launch", name)
