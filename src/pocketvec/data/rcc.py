"""A reader for Qt binary resource files (.rcc), enough to list and read the files inside.

GCompris ships its activity images inside .rcc files. Format (qtbase src/corelib/io/qresource.cpp):
header "qres", version, tree/data/names offsets (big-endian uint32), flags (version >= 3); tree
nodes of 14 bytes (+8 modification time from version 2): name offset, flags, then either child
count + first child (directories) or locale + data offset (files). Names are uint16 length, uint32
hash, UTF-16BE text; data is a uint32 size then the bytes, zlib-compressed (with a 4-byte size
prefix) when flag 1 is set. zstd-compressed entries (flag 4) are skipped.
"""

from __future__ import annotations

import struct
import zlib
from collections.abc import Iterator
from functools import lru_cache
from pathlib import Path

from pocketvec.errors import DatasetError

_COMPRESSED, _DIRECTORY, _ZSTD = 1, 2, 4


class RccFile:
    def __init__(self, path: Path) -> None:
        self.path = path
        self.blob = path.read_bytes()
        if self.blob[:4] != b"qres":
            raise DatasetError(f"{path}: not a Qt resource file (no 'qres' header)")
        self.version, self.tree, self.data, self.names = struct.unpack(">IIII", self.blob[4:20])
        self.node_size = 14 if self.version < 2 else 22

    def _name(self, offset: int) -> str:
        start = self.names + offset
        (length,) = struct.unpack(">H", self.blob[start : start + 2])
        return self.blob[start + 6 : start + 6 + 2 * length].decode("utf-16-be")

    def _node(self, index: int) -> tuple[str, int, int, int]:
        start = self.tree + index * self.node_size
        name_offset, flags = struct.unpack(">IH", self.blob[start : start + 6])
        a, b = struct.unpack(">II", self.blob[start + 6 : start + 14])
        name = self._name(name_offset) if index else ""
        return name, flags, a, b  # dirs: (child count, first child); files: (locale, data offset)

    def files(self) -> Iterator[tuple[str, int, int]]:
        """(path inside the resource, flags, data offset) of every file, depth first."""
        stack = [(0, "")]
        while stack:
            index, prefix = stack.pop()
            name, flags, a, b = self._node(index)
            path = f"{prefix}/{name}" if name else prefix
            if flags & _DIRECTORY:
                stack.extend((b + i, path) for i in reversed(range(a)))
            else:
                yield path.lstrip("/"), flags, b & 0xFFFFFFFF

    def read(self, flags: int, data_offset: int) -> bytes | None:
        start = self.data + data_offset
        (size,) = struct.unpack(">I", self.blob[start : start + 4])
        payload = self.blob[start + 4 : start + 4 + size]
        if flags & _ZSTD:
            return None
        if flags & _COMPRESSED:
            try:
                return zlib.decompress(payload[4:])
            except zlib.error as e:
                raise DatasetError(f"{self.path}: corrupt compressed entry at {data_offset} ({e})") from e
        return payload


def rcc_entries(path: Path, suffixes: tuple[str, ...]) -> list[str]:
    """Sorted paths of the files inside `path` whose names end with one of `suffixes`."""
    try:
        return sorted(name for name, flags, _ in RccFile(path).files()
                      if name.lower().endswith(suffixes) and not flags & _ZSTD)
    except (struct.error, UnicodeDecodeError) as e:
        raise DatasetError(f"{path}: unreadable Qt resource file ({e})") from e


@lru_cache(maxsize=2)
def _open(path: Path) -> RccFile:
    return RccFile(path)


def read_rcc_entry(path: Path, entry: str) -> bytes:
    rcc = _open(path)
    for name, flags, offset in rcc.files():
        if name == entry:
            data = rcc.read(flags, offset)
            if data is None:
                raise DatasetError(f"{path}: {entry} is zstd-compressed, which pocketvec cannot read")
            return data
    raise DatasetError(f"{path}: no entry {entry!r}")
