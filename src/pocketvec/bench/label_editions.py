"""The label-editions tier: wine-like labels of one design in five printed editions, of our own making.

The product must tell apart look-alikes that differ only in print. Each design is a label (portrait about
450 x 600 or landscape about 600 x 420) drawn with Pillow in fonts of Debian packages
(`pocketvec.data.sources.LABEL_FONTS`): paper colour and texture, a frame, an emblem, a rule, the
producer (a house such as "Château" and a name made of syllables), cuvée, grape, vintage, appellation, a
small printed line, alcohol and volume. Its five editions are identical but for ONE field each:
edition 0 is the original; each of the others changes one of `KINDS` (the vintage year, the volume, the
grape, one word of the cuvée, the small printed line, or a small medal added). A design has four of the
six kinds; any two designs of a run of three (0-2, 3-5, ...) have all six between them.

A design is a pure function of its split's seed (`LABEL_SEEDS`), its index and the fonts' file names.
Each split draws its producers' names from its own share of the syllable names (`producer_names`), so
no producer is in both splits.

The folder holds one image per item, `<design>--<edition>.png`, and a `manifest.json` saying for each its
design, edition, the field that differs with both texts, and every text printed on it with its box.
"""

from __future__ import annotations

import hashlib
import itertools
import shutil
import sys
import unicodedata
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from functools import lru_cache
from pathlib import Path
from typing import TypeVar

import cv2
import numpy as np
from PIL import Image, ImageDraw, ImageFont

from pocketvec.bench.code_id import code_id
from pocketvec.bench.set_folders import build_set_folder
from pocketvec.data.preview import save_png_atomic
from pocketvec.data.sources import LABEL_FONTS, cache_root
from pocketvec.data.sources.packages import download, unpack
from pocketvec.errors import ConfigError, DatasetError

SET_NAME = "label-sets"  # one folder per split and size below it
LABEL_SEEDS = {"test": 38_500, "dev": 38_501}  # the splits' design seeds (pocketvec.bench.dataset.SPLITS)
KINDS = ("vintage", "volume", "grape", "cuvee", "line", "medal")
EDITIONS = 5  # the original and four editions, each with one kind of difference
REFERENCE = 600  # a design's long side in its own units; cap heights below are in these units
SUPERSAMPLE = 2  # drawn at twice the size, then downscaled: smooth shapes
MIN_CAP = 14  # the smallest cap height of a text that differs between editions
CAPS = {"house": 15, "name": 36, "cuvee": 22, "grape": 20, "vintage": 40, "region": 14, "line": 15,
        "alcohol": 16, "volume": 28, "medal": 6}
MEDAL_RADIUS = 33
SIDE, BOTTOM = 30, 28  # the corner texts' distance from the sides, their baseline's from the bottom
VOLUME_HALF = 56  # the volume is centred this far from its side: a longer volume spreads both ways


@dataclass(frozen=True)
class Language:
    """The printed matter of one wine country."""

    houses: tuple[str, ...]  # printed above the name ("{name} Estate" reads "ESTATE" over the name)
    regions: tuple[str, ...]  # the appellation line; "{}" takes a region's name
    cuvees: tuple[tuple[str, ...], ...]  # a cuvée, then the editions that change one of its words
    lines: tuple[str, ...]  # the small printed line: any two of these
    volumes: tuple[str, ...]  # the original's volume, then the editions'
    medal: tuple[str, tuple[str, str, str]]  # the award's word, and gold, silver, bronze
    alcohol: str


LANGUAGES = {
    "fr": Language(("Château", "Domaine", "Clos"), ("Appellation {} Contrôlée", "Appellation {} Protégée"),
                   (("Réserve", "Grande Réserve", "Réserve Spéciale"), ("Cuvée Prestige", "Cuvée Tradition"),
                    ("Vieilles Vignes", "Jeunes Vignes", "Très Vieilles Vignes"), ("Premier Cru", "Grand Cru")),
                   ("Mis en bouteille au château", "Mis en bouteille à la propriété", "Mis en bouteille au domaine"),
                   ("75cl", "37,5cl", "150cl"), ("MÉDAILLE", ("OR", "ARGENT", "BRONZE")), "{:.1f}% vol"),
    "en": Language(("Estate", "Cellars", "Vineyards"), ("{} Valley", "Product of {}", "{} Hills"),
                   (("Reserve", "Estate Reserve", "Private Reserve"), ("Old Vines", "Young Vines"),
                    ("Single Vineyard", "Single Barrel")),
                   ("Estate bottled", "Bottled at the winery", "Grown, produced and bottled by"),
                   ("750 ml", "1.5 L", "3 L"), ("MEDAL", ("GOLD", "SILVER", "BRONZE")), "{:.1f}% alc./vol."),
    "es": Language(("Bodega", "Bodegas", "Viñedos"), ("Denominación de Origen {}", "D.O. {}"),
                   (("Reserva", "Gran Reserva", "Reserva Especial"), ("Crianza en Barrica", "Crianza en Roble"),
                    ("Viñas Viejas", "Viñas Jóvenes")),
                   ("Embotellado en origen", "Embotellado en la propiedad", "Embotellado por la bodega"),
                   ("75cl", "37,5cl", "150cl"), ("MEDALLA", ("ORO", "PLATA", "BRONCE")), "{:.1f}% vol"),
    "de": Language(("Weingut", "Weinhaus", "Schlossgut"), ("Qualitätswein {}", "Prädikatswein {}"),
                   (("Spätlese", "Auslese", "Kabinett"), ("Alte Reben", "Junge Reben"),
                    ("Grosses Gewächs", "Erstes Gewächs")),
                   ("Gutsabfüllung", "Erzeugerabfüllung", "Abgefüllt im Weingut"),
                   ("0,75 l", "0,375 l", "1,5 l"), ("MEDAILLE", ("GOLD", "SILBER", "BRONZE")), "{:.1f}% vol"),
    "it": Language(("Tenuta", "Fattoria", "Cantina"), ("{} DOC", "{} DOCG", "Indicazione Geografica {}"),
                   (("Riserva", "Gran Riserva", "Riserva Speciale"), ("Vigna Vecchia", "Vigna Nuova"),
                    ("Rosso Superiore", "Rosso Classico")),
                   ("Imbottigliato all'origine", "Imbottigliato dal produttore", "Imbottigliato in tenuta"),
                   ("75cl", "37,5cl", "150cl"), ("MEDAGLIA", ("ORO", "ARGENTO", "BRONZO")), "{:.1f}% vol"),
    "pt": Language(("Quinta", "Herdade", "Casa"), ("Denominação de Origem {}", "Vinho Regional {}"),
                   (("Reserva", "Grande Reserva", "Reserva Especial"), ("Vinhas Velhas", "Vinhas Novas"),
                    ("Colheita Selecionada", "Colheita Tardia")),
                   ("Engarrafado na origem", "Engarrafado na quinta", "Engarrafado pelo produtor"),
                   ("75cl", "37,5cl", "150cl"), ("MEDALHA", ("OURO", "PRATA", "BRONZE")), "{:.1f}% vol"),
}
GRAPES = ("Merlot", "Syrah", "Grenache", "Malbec", "Tempranillo", "Sangiovese", "Riesling", "Chardonnay",
          "Pinot Noir", "Cabernet Franc", "Nebbiolo", "Viognier", "Mourvèdre", "Zinfandel", "Gamay", "Carménère")
_ONSETS = ("Ar", "Bel", "Cas", "Cor", "Dal", "Es", "Fon", "Gal", "Hau", "Lan", "Lor", "Mar", "Mon", "Nor", "Or",
           "Pel", "Ros", "San", "Tor", "Val", "Ver", "Vil")
_MIDDLES = ("", "a", "e", "i", "o", "en", "an", "er", "il", "or")
_ENDINGS = ("mont", "lac", "rac", "ville", "bert", "nay", "zac", "vel", "ric", "sac", "ria", "lon", "dor", "gne",
            "tal", "berg")
_REGION_ENDINGS = ("ois", "anne", "enay", "ières", "ade", "ona", "ino", "au")
PAPERS = ((246, 241, 226), (240, 230, 205), (250, 250, 247), (233, 220, 188), (228, 228, 222), (226, 232, 214))
DARK_PAPERS = ((28, 36, 58), (88, 20, 32), (22, 22, 24), (26, 52, 38))
INKS = ((30, 28, 26), (45, 30, 30), (25, 35, 60))
ACCENTS = ((120, 24, 40), (160, 120, 40), (40, 80, 50), (30, 50, 100), (20, 20, 20), (160, 70, 40))
LIGHT_INKS = ((236, 226, 200), (245, 245, 240))
LIGHT_ACCENTS = ((205, 170, 90), (200, 200, 205))
METALS = (((212, 175, 55), (140, 105, 20)), ((200, 202, 208), (110, 112, 120)), ((190, 120, 55), (115, 65, 25)))
TEXTURES = ("flat", "gradient", "grain", "laid", "vignette")
FRAMES = ("single", "double", "corners", "bands", "rounded")
EMBLEMS = ("shield", "grapes", "tower", "sun", "star", "monogram")
RULES = ("diamond", "double", "dots")
MIDDLE_ROWS = (("cuvee", "grape", "vintage"), ("vintage", "cuvee", "grape"), ("grape", "cuvee", "vintage"))
Colour = tuple[int, int, int]
T = TypeVar("T")


@dataclass(frozen=True)
class LabelConfig:
    designs: int = 40
    split: str = "test"
    long_side: int = 600

    def __post_init__(self) -> None:
        if self.split not in LABEL_SEEDS:
            raise ConfigError(f"split must be one of {', '.join(LABEL_SEEDS)}. Got {self.split!r}.")

    @property
    def seed(self) -> int:
        return LABEL_SEEDS[self.split]

    @property
    def items(self) -> int:
        return self.designs * EDITIONS


@dataclass(frozen=True)
class Style:
    """How a design looks (the same in all its editions); fonts by `<package>/<file>`."""

    paper: Colour
    ink: Colour
    accent: Colour
    texture: str
    frame: str
    emblem: str
    rule: str
    rows: tuple[str, str, str]  # the order of cuvée, grape and vintage
    title_font: str
    body_font: str
    metal: int  # the medal's: gold, silver, bronze
    medal_left: bool
    volume_left: bool


@dataclass(frozen=True)
class Design:
    """One label design: what its original prints, what each other edition changes, and how it looks."""

    seed: int
    index: int
    language: str
    size: tuple[int, int]  # (width, height) in units of a REFERENCE long side
    texts: dict[str, str]  # what the original prints: house, name, cuvee, grape, vintage, region, line, alcohol, volume
    changes: tuple[tuple[str, str], ...]  # editions 1-4: (kind, its text there; the medal's caption)
    style: Style

    @property
    def label(self) -> str:
        """`<house>-<name>`, ASCII, lower case: the design's part of its items' names."""
        words = f"{self.texts['house']}-{self.texts['name']}".lower()
        return unicodedata.normalize("NFKD", words).encode("ascii", "ignore").decode()

    @property
    def producer(self) -> str:
        house, name = self.texts["house"], self.texts["name"]
        return f"{name} {house}" if self.language == "en" else f"{house} {name}"

    def edition(self, index: int) -> tuple[str, str | None, str | None]:
        """(edition name, kind of difference, its text) of edition `index`; edition 0 is the original."""
        return ("original", None, None) if index == 0 else (self.changes[index - 1][0], *self.changes[index - 1])


def _all_names() -> list[str]:
    return sorted({a + b + c for a, b, c in itertools.product(_ONSETS, _MIDDLES, _ENDINGS)})


def _share(name: str) -> int:
    """Which split's share a name is in (a fixed hash: independent of the seeds)."""
    return hashlib.sha256(name.encode()).digest()[0] % len(LABEL_SEEDS)


@lru_cache(maxsize=len(LABEL_SEEDS))
def _split_names(split: str) -> tuple[str, ...]:
    own = [name for name in _all_names() if _share(name) == list(LABEL_SEEDS).index(split)]
    return tuple(own[i] for i in np.random.default_rng(LABEL_SEEDS[split]).permutation(len(own)))


def producer_names(split: str, count: int) -> list[str]:
    """The producers' names of a split's first `count` designs: its own share of the syllable names,
    shuffled by its seed (no name is in two splits' shares)."""
    names = _split_names(LabelConfig(split=split).split)
    if count > len(names):
        raise DatasetError(f"the {split} split of the label-editions tier has {len(names)} producers' names; "
                           f"{count} designs were asked for.")
    return list(names[:count])


def label_identity(name: str) -> str:
    """A producer of the label-editions tier, as the dev/test split check counts it."""
    return f"label-editions/{name}"


def _missing_kinds(index: int) -> tuple[str, str]:
    """The two kinds a design leaves out: round-robin pairs of the six kinds, three disjoint pairs a round."""
    rounds, slot = divmod(index % 15, 3)
    pair = ((5, rounds), ((rounds + 1) % 5, (rounds + 4) % 5), ((rounds + 2) % 5, (rounds + 3) % 5))[slot]
    return KINDS[pair[0]], KINDS[pair[1]]


def _pick(rng: np.random.Generator, options: Sequence[T]) -> T:
    return options[int(rng.integers(len(options)))]


def make_design(split: str, index: int, fonts: list[str]) -> Design:
    """Design `index` of a split (its seed), with fonts from `fonts` (`<package>/<file>` names)."""
    seed = LabelConfig(split=split).seed
    name = producer_names(split, index + 1)[index]
    rng = np.random.default_rng([seed, index])
    code = _pick(rng, sorted(LANGUAGES))
    language = LANGUAGES[code]
    size = (int(rng.integers(420, 481)), REFERENCE) if rng.random() < 0.7 else (REFERENCE, int(rng.integers(400, 441)))
    cuvee = _pick(rng, language.cuvees)
    lines = [language.lines[i] for i in rng.permutation(len(language.lines))[:2]]
    grapes = [GRAPES[i] for i in rng.permutation(len(GRAPES))[:2]]
    vintage = int(rng.integers(2004, 2022))
    region = _pick(rng, language.regions).format(_pick(rng, _ONSETS) + _pick(rng, _REGION_ENDINGS))
    alcohol = language.alcohol.format(float(rng.choice(np.arange(12.0, 15.0, 0.5))))
    texts = {"house": _pick(rng, language.houses), "name": name, "cuvee": cuvee[0], "grape": grapes[0],
             "vintage": str(vintage), "region": region, "line": lines[0], "volume": language.volumes[0],
             "alcohol": alcohol if code == "en" else alcohol.replace(".", ",")}
    metal = int(rng.integers(3))
    years = [y for y in range(max(2000, vintage - 9), min(2024, vintage + 9) + 1)  # both last digits differ
             if y % 10 != vintage % 10 and y // 10 != vintage // 10]
    edited = {"vintage": str(_pick(rng, years)), "volume": _pick(rng, language.volumes[1:]),
              "grape": grapes[1], "cuvee": _pick(rng, cuvee[1:]), "line": lines[1],
              "medal": f"{language.medal[0]} {language.medal[1][metal]} {vintage + int(rng.integers(1, 4))}"}
    missing = _missing_kinds(index)
    kinds = [KINDS[i] for i in rng.permutation(len(KINDS)) if KINDS[i] not in missing]
    dark = rng.random() < 0.25
    body = [f for f in fonts if not any(s in f for s in ("Ita", "Oblique", "Z003"))]
    style = Style(_pick(rng, DARK_PAPERS if dark else PAPERS), _pick(rng, LIGHT_INKS if dark else INKS),
                  _pick(rng, LIGHT_ACCENTS if dark else ACCENTS), _pick(rng, TEXTURES), _pick(rng, FRAMES),
                  _pick(rng, EMBLEMS), _pick(rng, RULES), _pick(rng, MIDDLE_ROWS), _pick(rng, fonts),
                  _pick(rng, body), metal, bool(rng.random() < 0.5), bool(rng.random() < 0.5))
    return Design(seed, index, code, size, texts, tuple((kind, edited[kind]) for kind in kinds), style)


@lru_cache(maxsize=512)
def _font(path: Path, cap: float) -> ImageFont.FreeTypeFont:
    """`path` at the size whose capital H is `cap` pixels tall (basic layout: the same on every machine)."""
    probe = ImageFont.truetype(str(path), 200, layout_engine=ImageFont.Layout.BASIC)
    top, bottom = probe.getbbox("H")[1::2]
    return ImageFont.truetype(str(path), max(1, round(cap * 200 / (bottom - top))),
                              layout_engine=ImageFont.Layout.BASIC)


class _Canvas:
    """A label being drawn at SUPERSAMPLE x its output size; coordinates in design units."""

    def __init__(self, design: Design, fonts: dict[str, Path], long_side: int) -> None:
        self.design, self.fonts, self.style = design, fonts, design.style
        self.k = long_side / REFERENCE * SUPERSAMPLE
        self.out_size = tuple(round(v * long_side / REFERENCE) for v in design.size)
        w, h = (v * SUPERSAMPLE for v in self.out_size)
        self.image = Image.fromarray(_paper(design, w, h))
        self.draw = ImageDraw.Draw(self.image)
        self.boxes: dict[str, dict] = {}

    def xy(self, *values: float) -> list[float]:
        return [v * self.k for v in values]

    def text(self, field: str, text: str, x: float, baseline: float, anchor: str = "ms", title: bool = False) -> None:
        """`text` with its baseline at `baseline`; shrunk (never below MIN_CAP) when wider than the label allows."""
        path = self.fonts[self.style.title_font if title else self.style.body_font]
        cap = CAPS[field]
        limit = (self.design.size[0] - 64) * self.k
        while cap > MIN_CAP and _font(path, cap * self.k).getlength(text) > limit:
            cap -= 1
        font = _font(path, cap * self.k)
        at = self.xy(x, baseline)
        self.draw.text(at, text, font=font, fill=self.style.accent if title else self.style.ink, anchor=anchor)
        self.record(field, text, self.draw.textbbox(at, text, font=font, anchor=anchor), font)

    def record(self, field: str, text: str, box: tuple | list, font: ImageFont.FreeTypeFont) -> None:
        """What the label prints in `field`: its text, box (output pixels) and cap height (measured: the font's
        capital H, in design units, i.e. pixels at a REFERENCE long side)."""
        top, bottom = font.getbbox("H")[1::2]
        self.boxes[field] = {"text": text, "box": [round(v / SUPERSAMPLE) for v in box],
                             "cap": round((bottom - top) / self.k, 1)}

    def finish(self) -> Image.Image:
        return self.image.resize(self.out_size, Image.Resampling.LANCZOS)


def _paper(design: Design, w: int, h: int) -> np.ndarray:
    """The paper: colour and texture (seeded by the design, so every edition has the same)."""
    rng = np.random.default_rng([design.seed, design.index, 1])
    paper = np.broadcast_to(np.array(design.style.paper, np.float32), (h, w, 3)).copy()
    texture = design.style.texture
    if texture == "gradient":
        paper *= np.linspace(1.03, 0.88, h, dtype=np.float32)[:, None, None]
    elif texture == "grain":
        paper += cv2.GaussianBlur(rng.normal(0, 7, (h, w)).astype(np.float32), (0, 0), 1.2)[..., None]
    elif texture == "laid":
        paper -= 6 * ((np.arange(h) // SUPERSAMPLE) % 5 == 0).astype(np.float32)[:, None, None]
    elif texture == "vignette":
        yy, xx = np.mgrid[-1 : 1 : h * 1j, -1 : 1 : w * 1j].astype(np.float32)
        paper *= (1 - 0.12 * (xx**2 + yy**2))[..., None]
    return np.clip(paper, 0, 255).astype(np.uint8)


def _frame(c: _Canvas) -> None:
    w, h = c.design.size
    style, draw = c.style.frame, c.draw
    if style == "bands":
        draw.rectangle(c.xy(0, 0, w, 12), fill=c.style.accent)
        draw.rectangle(c.xy(0, h - 12, w, h), fill=c.style.accent)
        return
    m = 14
    if style == "rounded":
        draw.rounded_rectangle(c.xy(m, m, w - m, h - m), radius=18 * c.k, outline=c.style.accent,
                               width=round(2 * c.k))
        return
    draw.rectangle(c.xy(m, m, w - m, h - m), outline=c.style.accent, width=round((3 if style == "double" else 2) * c.k))
    if style == "double":
        draw.rectangle(c.xy(m + 6, m + 6, w - m - 6, h - m - 6), outline=c.style.accent, width=round(c.k))
    elif style == "corners":
        for x, y in ((m, m), (w - m, m), (m, h - m), (w - m, h - m)):
            draw.rectangle(c.xy(x - 5, y - 5, x + 5, y + 5), fill=c.style.accent)


def _emblem(c: _Canvas, cx: float, cy: float, s: float) -> None:
    """The design's emblem in its accent colour, `s` tall, centred on (cx, cy)."""
    draw, ink, paper, kind = c.draw, c.style.accent, c.style.paper, c.style.emblem
    at = lambda *points: c.xy(*[v * s + (cx if i % 2 == 0 else cy) for i, v in enumerate(points)])  # noqa: E731
    if kind == "shield":
        draw.polygon(at(-0.4, -0.5, 0.4, -0.5, 0.4, 0.05, 0, 0.5, -0.4, 0.05), fill=ink)
        draw.polygon(at(-0.3, 0.12, 0, -0.2, 0.3, 0.12, 0.3, 0.27, 0, -0.04, -0.3, 0.27), fill=paper)
    elif kind == "grapes":
        draw.line(at(0, -0.5, 0.05, -0.3), fill=ink, width=round(2 * c.k))
        draw.polygon(at(0.05, -0.35, 0.4, -0.5, 0.3, -0.22), fill=ink)
        for row, count in enumerate((4, 3, 2, 1)):
            for i in range(count):
                x, y = (i - (count - 1) / 2) * 0.19, -0.17 + row * 0.17
                draw.ellipse(at(x - 0.09, y - 0.09, x + 0.09, y + 0.09), fill=ink, outline=paper, width=round(c.k))
    elif kind == "tower":
        draw.rectangle(at(-0.22, -0.25, 0.22, 0.45), fill=ink)
        for x in (-0.22, -0.04, 0.14):
            draw.rectangle(at(x, -0.4, x + 0.08, -0.25), fill=ink)
        draw.chord(at(-0.08, 0.15, 0.08, 0.45), 180, 360, fill=paper)
        draw.rectangle(at(-0.08, 0.3, 0.08, 0.45), fill=paper)
        draw.line(at(-0.45, 0.47, 0.45, 0.47), fill=ink, width=round(2 * c.k))
    elif kind == "sun":
        draw.ellipse(at(-0.2, -0.2, 0.2, 0.2), fill=ink)
        for angle in np.arange(12) * np.pi / 6:
            dx, dy = np.cos(angle), np.sin(angle)
            draw.line(at(0.27 * dx, 0.27 * dy, 0.45 * dx, 0.45 * dy), fill=ink, width=round(2 * c.k))
    else:  # star, monogram: in a ring
        draw.ellipse(at(-0.45, -0.45, 0.45, 0.45), outline=ink, width=round(2 * c.k))
        if kind == "star":
            angles = np.arange(10) * np.pi / 5 - np.pi / 2
            radii = np.where(np.arange(10) % 2 == 0, 0.32, 0.13)
            draw.polygon(at(*np.column_stack([radii * np.cos(angles), radii * np.sin(angles)]).ravel()), fill=ink)
        else:
            font = _font(c.fonts[c.style.title_font], 0.42 * s * c.k)
            draw.text(c.xy(cx, cy), c.design.texts["name"][0], font=font, fill=ink, anchor="mm")


def _rule(c: _Canvas, cx: float, y: float, half: float) -> None:
    draw, ink, kind = c.draw, c.style.accent, c.style.rule
    if kind == "diamond":
        draw.line(c.xy(cx - half, y, cx - 9, y), fill=ink, width=round(c.k))
        draw.line(c.xy(cx + 9, y, cx + half, y), fill=ink, width=round(c.k))
        draw.polygon(c.xy(cx - 6, y, cx, y - 4, cx + 6, y, cx, y + 4), fill=ink)
    elif kind == "double":
        for dy in (-2, 2):
            draw.line(c.xy(cx - half, y + dy, cx + half, y + dy), fill=ink, width=round(c.k))
    else:
        for x in np.arange(cx - half, cx + half + 1, 10):
            draw.ellipse(c.xy(x - 1.5, y - 1.5, x + 1.5, y + 1.5), fill=ink)


def _medal(c: _Canvas, cx: float, cy: float, caption: str) -> None:
    """A small medal: a metal disc with a darker rim and the caption's three words in tiny type."""
    face, rim = METALS[c.style.metal]
    r = MEDAL_RADIUS
    c.draw.ellipse(c.xy(cx - r, cy - r, cx + r, cy + r), fill=rim)
    c.draw.ellipse(c.xy(cx - r + 3, cy - r + 3, cx + r - 3, cy + r - 3), fill=face)
    font = _font(c.fonts[c.style.body_font], CAPS["medal"] * c.k)
    for word, dy in zip(caption.split(" "), (-10, 3, 16), strict=True):
        c.draw.text(c.xy(cx, cy + dy), word, font=font, fill=(45, 30, 10), anchor="ms")
    c.record("medal", caption, c.xy(cx - r, cy - r, cx + r, cy + r), font)


def _layout(design: Design) -> tuple[tuple[float, float, float], dict[str, float]]:
    """The emblem's centre and height, and the baseline of each text row. Portrait: the emblem tops the stack of
    rows; landscape: it stands left of the producer."""
    w, h = design.size
    landscape = w > h
    rows = [("house", CAPS["house"], 1.0), ("name", CAPS["name"], 0.5), ("rule", 4, 0.8),
            *[(row, CAPS[row], 0.8 if i == 0 else 1.0) for i, row in enumerate(design.style.rows)],
            ("region", CAPS["region"], 1.0), ("line", CAPS["line"], 1.0)]
    emblem = 70 if landscape else 80
    if not landscape:
        rows.insert(0, ("emblem", emblem, 1.0))
    top, bottom = 32, h - BOTTOM - CAPS["volume"] - 20
    gap = (bottom - top - sum(height for _, height, _ in rows)) / sum(weight for _, _, weight in rows[1:])
    baselines, y = {}, top
    for i, (row, height, weight) in enumerate(rows):
        y += (gap * weight if i else 0) + height
        baselines[row] = y
    if landscape:
        centre = (34 + emblem / 2, (baselines["name"] + baselines["house"] - CAPS["house"]) / 2, emblem)
    else:
        centre = (w / 2, baselines["emblem"] - emblem / 2, emblem)
    return centre, baselines


def render_edition(design: Design, edition: int, fonts: dict[str, Path], long_side: int) -> tuple[Image.Image, dict]:
    """Edition `edition` of a design, `long_side` pixels on its long side, and what it prints: field ->
    {text, box (output pixels), cap (cap height at a REFERENCE long side)}."""
    _, kind, changed = design.edition(edition)
    texts = {**design.texts, **({kind: changed} if kind and kind != "medal" else {})}
    c = _Canvas(design, fonts, long_side)
    w, h = design.size
    cx = w / 2
    _frame(c)
    emblem, rows = _layout(design)
    _emblem(c, *emblem)
    c.text("house", texts["house"].upper(), cx, rows["house"])
    c.text("name", texts["name"], cx, rows["name"], title=True)
    _rule(c, cx, rows["rule"] - 2, min(90, w / 5))
    for field in (*design.style.rows, "region", "line"):
        c.text(field, texts[field], cx, rows[field], title=field in ("cuvee", "vintage"))
    side = -1 if design.style.volume_left else 1  # the alcohol in the other corner
    c.text("alcohol", texts["alcohol"], w - SIDE if side < 0 else SIDE, h - BOTTOM, anchor="rs" if side < 0 else "ls")
    c.text("volume", texts["volume"], cx + side * (cx - SIDE - VOLUME_HALF), h - BOTTOM, title=True)
    if kind == "medal":
        r = MEDAL_RADIUS
        left = design.style.medal_left and w < h  # landscape: opposite the emblem
        _medal(c, SIDE + r if left else w - SIDE - r, 30 + r, changed or "")
    return c.finish(), c.boxes


def label_fonts(scratch: Path, root: Path) -> dict[str, Path]:
    """`<package>/<file>` -> font file of every font of LABEL_FONTS, unpacked into `scratch` (downloaded into
    `<root>/_packages` first when not there: apt-get, which a clear error names with the package)."""
    found = {}
    for ref in LABEL_FONTS:
        for path in unpack(ref, download(ref, root / "_packages"), scratch / ref.name):
            found[f"{ref.name}/{path.name}"] = path
    if not found:
        raise DatasetError(f"the packages {', '.join(ref.name for ref in LABEL_FONTS)} hold no fonts for labels.")
    return dict(sorted(found.items()))


def changed_mask(a: np.ndarray, b: np.ndarray, tolerance: int = 24) -> np.ndarray:
    """Where two renderings of a label differ by more than `tolerance` in some channel."""
    return np.abs(a.astype(np.int16) - b.astype(np.int16)).max(axis=-1) > tolerance


def _entry(design: Design, edition: int, fields: dict, size: tuple[int, int]) -> dict:
    name, kind, text = design.edition(edition)
    return {"design": design.label, "producer": design.producer, "edition": name, "index": edition,
            "differs": kind, "text": text, "original": None if kind in (None, "medal") else design.texts[kind],
            "fields": fields, "size": list(size), "language": design.language,
            "fonts": {"title": design.style.title_font, "body": design.style.body_font}}


def build_label_editions(config: LabelConfig = LabelConfig(), root: Path | None = None) -> Path:
    """Build (or reuse) a split's label-editions set in `<cache>/label-sets/<split>-<size>/`; returns the folder.

    Built aside and renamed into place (`build_set_folder`); rebuilt when this module's code changes."""
    root = root or cache_root()
    folder = root / SET_NAME / f"{config.split}-designs{config.designs}-side{config.long_side}"
    wanted = {**asdict(config), "seed": config.seed, "code": code_id(sys.modules[__name__])}

    def make(building: Path) -> dict:
        fonts = label_fonts(building / "_fonts", root)
        items, designs = {}, {}
        for index in range(config.designs):
            design = make_design(config.split, index, list(fonts))
            designs[design.label] = {"index": index, "seed": design.seed, "producer": design.producer,
                                     "name": design.texts["name"], "style": asdict(design.style)}
            original = None
            for edition in range(EDITIONS):
                image, fields = render_edition(design, edition, fonts, config.long_side)
                pixels = np.asarray(image)
                original = pixels if original is None else original
                entry = {**_entry(design, edition, fields, image.size),
                         "changed_share": round(float(changed_mask(original, pixels).mean()), 5)}
                item = f"{design.label}--{entry['edition']}"
                save_png_atomic(image, building / f"{item}.png")
                items[item] = entry
        shutil.rmtree(building / "_fonts")
        return {"description": __doc__.split("\n\n")[0], "designs": designs, "items": items,
                "licence": "our own renderings; fonts: " + ", ".join(ref.name for ref in LABEL_FONTS)
                + " (their Debian copyright files)"}

    return build_set_folder(folder, wanted, make)
