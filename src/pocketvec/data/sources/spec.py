"""The frozen description of one public item set: its packages, how items are rendered, its role."""

from __future__ import annotations

from dataclasses import dataclass, field

# what an item looks like, for reporting a pool's mix (docs/DATA.md)
KINDS = ("printed matter", "symbols", "emoji", "text and glyphs", "illustrations", "photographs",
         "textures", "game art", "flags", "portraits", "backgrounds")


@dataclass(frozen=True)
class PackageRef:
    """One package to download: `kind` is "deb" (apt-get download) or "npm" (npm pack)."""

    kind: str
    name: str
    include: tuple[str, ...]  # glob patterns (relative to the package root) of the files to use
    exclude: tuple[str, ...] = ()  # glob patterns on the file name to leave out


@dataclass(frozen=True)
class SourceSpec:
    name: str
    role: str  # training | benchmark | backgrounds
    render: str  # pdf | svg | raster | rcc | svg-parts | iconify | glyphs | zip
    packages: tuple[PackageRef, ...]
    licence: str  # short SPDX-like summary; the full text is copied next to the items as COPYRIGHT-*.txt
    description: str
    long_side: int = 600  # output size: longest side in pixels (never upscaled for raster inputs)
    suffix: str = ".png"  # output format of each item
    max_pages_per_document: int = 30  # PDFs: evenly spaced pages per document, so a full fetch stays short
    options: dict = field(default_factory=dict, hash=False, compare=False)
    kind: str = ""  # one of KINDS: what the items look like

    def __post_init__(self) -> None:
        if self.kind and self.kind not in KINDS:
            raise ValueError(f"{self.name}: kind {self.kind!r} is not one of {', '.join(KINDS)}")

    @property
    def origin(self) -> str:
        return ", ".join(f"{p.kind}:{p.name}" for p in self.packages)
