"""The training pool's item sets beyond the original four: symbols, emoji, glyph sheets, clip art, playing
cards, game art and printed diagrams, all from Debian and npm packages (docs/DATA.md lists them).

None of these packages is one the benchmark tiers use (texlive-humanities-doc, flag-icons,
gnome-backgrounds): `pool_guard.check_catalog` refuses such an overlap, and flag emoji are left out of
the emoji sets (the benchmark's flags are a kind a training pool must not cover from the same art).
"""

from __future__ import annotations

from pocketvec.data.sources.spec import PackageRef, SourceSpec

# symbols are drawn black on white at 384 px: an icon needs no more, and the fetch stays short
_ICON = {"background": "white"}
# regional-indicator pairs and tag sequences are flags: not in the pool; skin-tone variants repeat a
# picture in five shades: only the default one is kept
_FLAG_EMOJI = ("1f1e[6-9a-f]-1f1*", "1f1f[0-9a-f]-1f1*", "1f3f4-e00*", "*-1f3f[b-f]*")


def _svg_icons(name: str, package: str, include: tuple[str, ...], licence: str, description: str,
               kind: str = "symbols", exclude: tuple[str, ...] = ()) -> SourceSpec:
    """An npm package of SVG icons: one item per file, drawn on white at 384 px."""
    return SourceSpec(name, "training", "svg", (PackageRef("npm", package, include, exclude),), licence, description,
                      long_side=384, options=_ICON, kind=kind)


POOL_SOURCES: tuple[SourceSpec, ...] = (
    _svg_icons("icons-tabler", "@tabler/icons@3.51.0", ("package/icons/outline/*.svg", "package/icons/filled/*.svg"),
               "MIT", "Tabler icons, outline and filled (line pictograms)"),
    _svg_icons("icons-lucide", "lucide-static@1.62.0", ("package/icons/*.svg",), "ISC",
               "Lucide icons (line pictograms)"),
    _svg_icons("icons-simple", "simple-icons@16.37.0", ("package/icons/*.svg",),
               "CC0-1.0 (brand marks remain trademarks of their owners)", "Simple Icons: brand logos, solid"),
    _svg_icons("icons-mdi", "@mdi/svg@7.4.47", ("package/svg/*.svg",), "Apache-2.0",
               "Material Design Icons (community set), solid pictograms"),
    _svg_icons("icons-bootstrap", "bootstrap-icons@1.13.2", ("package/icons/*.svg",), "MIT", "Bootstrap Icons"),
    _svg_icons("icons-fontawesome", "@fortawesome/fontawesome-free@7.3.1", ("package/svgs/*/*.svg",),
               "CC-BY-4.0 (icons)", "Font Awesome Free: solid, regular and brand icons"),
    _svg_icons("emoji-twemoji", "@twemoji/svg@15.0.0", ("package/*.svg",), "CC-BY-4.0",
               "Twemoji colour emoji (no flags, no skin-tone variants)", kind="emoji", exclude=_FLAG_EMOJI),
    SourceSpec(
        "game-icons", "training", "iconify",
        (PackageRef("npm", "@iconify-json/game-icons@1.2.4", ("package/icons.json",)),),
        "CC-BY-3.0", "game-icons.net pictograms (weapons, creatures, cards, dice, ...), via Iconify JSON",
        long_side=384, options=_ICON, kind="game art",
    ),
    SourceSpec(
        "emoji-noto", "training", "glyphs",
        (PackageRef("deb", "fonts-noto-color-emoji", ("usr/share/fonts/truetype/noto/NotoColorEmoji.ttf",)),),
        "OFL-1.1", "Noto Color Emoji, one emoji per item (single code points: no flags)",
        long_side=384, max_pages_per_document=100_000, options={"per_sheet": 1, "size": 109}, kind="emoji",
    ),
    SourceSpec(
        "glyphs-noto", "training", "glyphs",
        (PackageRef("deb", "fonts-noto-core",
                    ("usr/share/fonts/truetype/noto/*-Regular.ttf", "usr/share/fonts/truetype/noto/*-Bold.ttf")),),
        "OFL-1.1", "glyph sheets (6x6 characters) of the Noto fonts: Latin, Greek, Cyrillic and dozens of scripts",
        max_pages_per_document=12, options={"per_sheet": 36, "size": 60}, kind="text and glyphs",
    ),
    SourceSpec(
        "clipart", "training", "svg",
        (PackageRef("deb", "openclipart-svg", ("usr/share/openclipart/svg/**/*.svg",)),),
        "Public domain (Open Clip Art Library)", "Open Clip Art illustrations",
        long_side=512, options=_ICON, kind="illustrations",
    ),
    SourceSpec(
        "playing-cards", "training", "svg-parts",
        (PackageRef("deb", "kdegames-card-data-kf5", ("usr/share/carddecks/svg-*/*.svgz",)),),
        "LGPL/GPL/public domain (per deck)", "every card of the KDE card decks (52 faces, jokers, backs)",
        options={**_ICON, "part_pattern": r"(?:[0-9]+|jack|queen|king|ace)_(?:club|diamond|heart|spade)"
                 r"|(?:red|black)_joker|back"}, kind="game art",
    ),
    SourceSpec(
        "pictures-docs", "training", "pdf",
        (PackageRef("deb", "texlive-pictures-doc", ("usr/share/doc/texlive-doc/**/*.pdf",)),),
        "LPPL-1.3c et al. (per package)", "pages of the TeX graphics manuals (TikZ, PSTricks, ...): diagrams, plots",
        max_pages_per_document=12, kind="printed matter",
    ),
    SourceSpec(
        "tuxpaint-stamps", "training", "raster",
        (PackageRef("deb", "tuxpaint-stamps-default", ("usr/share/tuxpaint/stamps/**/*.png",), ("*_mirror.png",)),),
        "GPL-2.0-or-later / CC / public domain (per stamp)", "Tux Paint stamps: animals, food, vehicles, ...",
        long_side=512, kind="illustrations",
    ),
    SourceSpec(
        "textures-openarena", "training", "zip",
        (PackageRef("deb", "openarena-081-textures", ("usr/share/games/openarena/baseoa/*.pk3",)),),
        "GPL-2.0-or-later", "OpenArena 0.8.1 textures (walls, floors, metal, stone, skies) from its .pk3 pack",
        long_side=512, suffix=".jpg", kind="textures",
        options={"photo_suffixes": (".jpg", ".tga", ".png"), "min_bytes": 30_000, "min_side": 128},
    ),
    SourceSpec(
        "textures-colobot", "training", "raster",
        (PackageRef("deb", "colobot-common-textures", ("usr/share/games/colobot/**/*.png",)),),
        "GPL-3.0-or-later", "Colobot terrain, object and planet textures",
        long_side=512, suffix=".jpg", options={"min_side": 128}, kind="textures",
    ),
    SourceSpec(
        "hedgewars-themes", "training", "raster",
        (PackageRef("deb", "hedgewars-data", ("usr/share/games/hedgewars/Data/Themes/**/*.png",
                                              "usr/share/games/hedgewars/Data/Graphics/Missions/**/*.png")),),
        "GPL-2.0 / CC-BY-SA (per file)", "Hedgewars theme art (skies, land textures, scenery) and mission pictures",
        long_side=512, options={"min_side": 96}, kind="game art",
    ),
)
