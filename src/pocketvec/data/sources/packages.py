"""Download Debian and npm packages and unpack only the files a set needs.

Downloads land in `<cache>/_packages/` and are reused; unpacking streams `dpkg-deb --fsys-tarfile`
(or the npm tarball) through Python's tarfile and keeps only the members that match the set's globs.
"""

from __future__ import annotations

import fnmatch
import re
import shutil
import subprocess
import tarfile
from functools import lru_cache
from pathlib import Path, PurePosixPath

from pocketvec.data.sources.spec import PackageRef
from pocketvec.errors import DatasetError

TOOL_PACKAGES = {
    "apt-get": "apt",
    "dpkg-deb": "dpkg",
    "npm": "npm",
    "pdftoppm": "poppler-utils",
    "pdfinfo": "poppler-utils",
    "rsvg-convert": "librsvg2-bin",
}


class MissingToolError(DatasetError):
    """A system program that a data set needs is not installed."""

    def __init__(self, tool: str, purpose: str) -> None:
        package = TOOL_PACKAGES.get(tool, tool)
        super().__init__(f"`{tool}` is not installed; it is needed to {purpose}. "
                         f"Install it with: apt-get install {package}")
        self.tool = tool


def require_tool(tool: str, purpose: str) -> str:
    path = shutil.which(tool)
    if path is None:
        raise MissingToolError(tool, purpose)
    return path


def _run(command: list[str], cwd: Path, what: str) -> str:
    try:
        done = subprocess.run(command, cwd=cwd, capture_output=True, text=True, check=True)
    except subprocess.CalledProcessError as e:
        raise DatasetError(f"{what} failed ({' '.join(command)}): {(e.stderr or e.stdout).strip()[-400:]}") from e
    return done.stdout


def download(ref: PackageRef, downloads: Path) -> Path:
    """The package file in `downloads`, fetched with apt-get or npm when not there yet."""
    downloads.mkdir(parents=True, exist_ok=True)
    if ref.kind == "deb":
        found = sorted(downloads.glob(f"{ref.name}_*.deb"))
        if found:
            return found[-1]
        require_tool("apt-get", f"download the Debian package {ref.name}")
        _run([require_tool("apt-get", "download packages"), "download", ref.name], downloads,
             f"Downloading the Debian package {ref.name}")
        found = sorted(downloads.glob(f"{ref.name}_*.deb"))
    elif ref.kind == "npm":
        name, _, version = ref.name.rpartition("@") if "@" in ref.name[1:] else (ref.name, "", "")
        name = name.removeprefix("@").replace("/", "-")  # npm pack names @scope/pkg as scope-pkg-VERSION.tgz
        found = sorted(downloads.glob(f"{name}-{version or '*'}.tgz"))
        if found:
            return found[-1]
        npm = require_tool("npm", f"download the npm package {ref.name}")
        _run([npm, "pack", ref.name, "--pack-destination", str(downloads)], downloads,
             f"Downloading the npm package {ref.name}")
        found = sorted(downloads.glob(f"{name}-{version or '*'}.tgz"))
    else:
        raise DatasetError(f"Unknown package kind {ref.kind!r} for {ref.name}. Valid: deb, npm.")
    if not found:
        raise DatasetError(f"Downloading {ref.name} produced no package file in {downloads}.")
    return found[-1]


@lru_cache(maxsize=64)
def _glob_regex(pattern: str) -> re.Pattern[str]:
    """A path glob as a regex: `**/` is zero or more folders, `*` and `?` stay inside one name."""
    out = []
    for token in re.split(r"(\*\*/|\*|\?)", pattern):
        out.append({"**/": "(?:[^/]+/)*", "*": "[^/]*", "?": "[^/]"}.get(token, re.escape(token)))
    return re.compile("".join(out))


def _wanted(member: str, ref: PackageRef) -> bool:
    path = PurePosixPath(member.removeprefix("./"))
    if any(fnmatch.fnmatch(path.name, pattern) for pattern in ref.exclude):
        return False
    return any(_glob_regex(pattern).fullmatch(str(path)) for pattern in ref.include)


def unpack(ref: PackageRef, package_file: Path, target: Path) -> list[Path]:
    """Extract the files of `package_file` matching `ref.include` into `target`; sorted paths."""
    marker = target / ".unpacked"
    if not marker.is_file():
        if target.exists():
            shutil.rmtree(target)  # a half-finished unpack: start again
        target.mkdir(parents=True)
        if ref.kind == "deb":
            dpkg = require_tool("dpkg-deb", f"unpack {package_file.name}")
            with subprocess.Popen([dpkg, "--fsys-tarfile", str(package_file)], stdout=subprocess.PIPE) as proc:
                assert proc.stdout is not None
                with tarfile.open(fileobj=proc.stdout, mode="r|") as archive:
                    _extract(archive, ref, target)
            if proc.returncode != 0:
                raise DatasetError(f"dpkg-deb could not read {package_file} (exit {proc.returncode}).")
        else:
            with tarfile.open(package_file, mode="r:*") as archive:
                _extract(archive, ref, target)
        marker.write_text(package_file.name)
    files = [p for p in target.rglob("*") if p.is_file() and p != marker]
    return sorted(p for p in files if _wanted(str(p.relative_to(target)), ref))


def _extract(archive: tarfile.TarFile, ref: PackageRef, target: Path) -> None:
    """Copy the wanted regular files out of the archive (no links, nothing outside `target`); works on
    every Python 3.11, including those whose tarfile has no extraction filters (before 3.11.4)."""
    root = target.resolve()
    try:
        for member in archive:
            if not member.isfile() or not (_wanted(member.name, ref) or _licence_member(member.name, ref)):
                continue
            dest = (root / member.name).resolve()
            if not dest.is_relative_to(root):
                raise DatasetError(f"{ref.name}: refusing the archive member {member.name!r} (outside the folder)")
            dest.parent.mkdir(parents=True, exist_ok=True)
            source = archive.extractfile(member)
            assert source is not None  # a regular file always has data
            with source, open(dest, "wb") as out:
                shutil.copyfileobj(source, out)
    except (tarfile.TarError, OSError) as e:
        raise DatasetError(f"Could not unpack {ref.name}: {e}") from e


def package_version(package_file: Path) -> str:
    """The version recorded in the package file name (Debian: name_version_arch.deb; npm: name-version.tgz)."""
    stem = package_file.name
    if stem.endswith(".deb"):
        return stem.split("_")[1].replace("%3a", ":")
    return stem.removesuffix(".tgz").rsplit("-", 1)[-1]


def _licence_member(member: str, ref: PackageRef) -> bool:
    path = member.removeprefix("./")
    if ref.kind == "deb":
        return path == f"usr/share/doc/{ref.name}/copyright"
    return path.lower() in ("package/license", "package/license.md", "package/license.txt")


def copyright_text(target: Path) -> str:
    """The unpacked package's copyright/licence file text, '' if it has none."""
    for path in sorted(target.rglob("*")):
        if path.is_file() and (path.name == "copyright" or path.name.lower().startswith("license")):
            return path.read_text(errors="replace")
    return ""
