"""Text verification: tell look-alikes apart by the words printed on them.

Each item's text is read once from its clean image at enrolment and kept in the gallery. At match time,
when the labels whose scores are near the best (`TextVerify.window`, at most `candidates`) carry words
that are not common to all of them, the photo's text is read and each of those labels is scored on
those words only: a word of the label found on the photo counts for it, a word of another candidate
found on the photo counts against it (a word nobody can find counts for no one). Found means: an
approximate substring of the photo's text (OCR drops spaces and confuses O/0, l/1, S/5 ...), graded
from 0 (at most 75 % of the word's characters right) to 1 (all); a number only as printed or with one
letter read for a look-alike digit; a word shorter than 4 only whole. Each candidate's score then moves by
`weight` x (its evidence - the best candidate's evidence): the label the text agrees with keeps its
score, the others fall behind by `weight` per word; the accept rule follows as before. Photos whose
candidates' words agree, or where nothing legible is found, keep the visual answer.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import lru_cache

import numpy as np

from pocketvec.runtime.local_rerank import label_ids

# letter <-> digit shapes OCR confuses: half an edit (digits among themselves stay whole edits: 2015 / 2016)
CONFUSABLE = ("o0", "l1", "i1", "s5", "b8", "z2", "g9", "q9", "t7", "a4")
CONFUSED = {a: [b for pair in CONFUSABLE for b in pair if a in pair and b != a] for a in "".join(CONFUSABLE)}
DECIMAL = re.compile(r"(?<=\d)[.,](?=\d)")
TOKEN = re.compile(r"[^\W_]+(?:\.[^\W_]+)*")
MIN_TOKEN = 2  # shorter words say nothing
SHORT = 4  # shorter words are found only whole (inside longer ones they are everywhere: "en", "la", "por")
FOUND_FROM = 0.75  # share of a word's characters right below which it counts as not found
SAME_FROM = 0.8  # an item's word with this share of its letters in another item's text: the same print read twice


@dataclass(frozen=True)
class TextVerify:
    """When and how much the printed text moves the scores (chosen on dev: docs/lab)."""

    weight: float = 0.2  # score per word of evidence
    window: float = 0.2  # labels within this of the best score are candidates
    candidates: int = 5  # at most this many, best first


def normalise(text: str) -> str:
    """Lower case, accents off, decimal commas as points, runs of anything else as one space."""
    text = unicodedata.normalize("NFKD", text.casefold())
    text = "".join(c for c in text if not unicodedata.combining(c))
    return " ".join(TOKEN.findall(DECIMAL.sub(".", text)))


def words(text: str) -> frozenset[str]:
    """The words of an item's text that can tell it apart."""
    return frozenset(w for w in normalise(text).split() if len(w) >= MIN_TOKEN)


def edits(word: str, text: str) -> float:
    """The fewest edits that turn `word` into some substring of `text` (spaces ignored; a look-alike letter
    for a digit, or back, is half an edit): Sellers' approximate substring match."""
    target = text.replace(" ", "")
    if word in target:
        return 0.0
    codes = np.frombuffer(target.encode("utf-32-le"), dtype=np.uint32)
    steps = np.arange(len(target) + 1, dtype=np.float64)
    previous = np.zeros(len(target) + 1)
    for i, char in enumerate(word, 1):
        swap = np.where(codes == ord(char), 0.0, 1.0)
        for other in CONFUSED.get(char, ()):
            swap[codes == ord(other)] = 0.5
        current = np.empty_like(previous)
        current[0] = i
        current[1:] = np.minimum(previous[:-1] + swap, previous[1:] + 1.0)
        previous = steps + np.minimum.accumulate(current - steps)  # or insert: current[j - 1] + 1
    return float(previous.min())


def found(word: str, photo: str) -> float:
    """How well `word` appears in `photo` (both normalised), spaces ignored: 0 (not) .. 1 (exactly); a word
    shorter than SHORT only as a whole word, a number only as printed or with one look-alike shape."""
    if len(word) < SHORT:
        return float(word in photo.split())
    cost = edits(word, photo)
    if any(c.isdigit() for c in word):
        return 1.0 - cost if cost <= 0.5 else 0.0
    right = 1.0 - cost / len(word)
    return float(np.clip((right - FOUND_FROM) / (1.0 - FOUND_FROM), 0.0, 1.0))


@lru_cache(maxsize=1 << 16)  # asked again for every photo whose candidates hold the same words
def holds(word: str, own: frozenset[str]) -> bool:
    """Whether an item's words hold `word`: exactly, or, for a word of letters, nearly (the same print read
    twice by OCR: "viino" / "vilino"); a word with digits only exactly (2015 / 2016)."""
    if word in own:
        return True
    if len(word) < SHORT or any(c.isdigit() for c in word):
        return False
    return 1.0 - edits(word, " ".join(sorted(own))) / len(word) >= SAME_FROM


def telling(candidates: Sequence[frozenset[str]]) -> tuple[list[str], np.ndarray]:
    """The words that tell the candidates apart (not held by all of them), and which candidate holds each
    (words x candidates)."""
    common = frozenset.intersection(*candidates) if candidates else frozenset()
    words_ = sorted(frozenset().union(*candidates) - common)
    held = np.array([[holds(w, own) for own in candidates] for w in words_], dtype=bool).reshape(len(words_),
                                                                                              len(candidates))
    keep = ~held.all(axis=1)
    return [w for w, k in zip(words_, keep, strict=True) if k], held[keep]


def evidence(photo_text: str, candidates: Sequence[frozenset[str]]) -> np.ndarray:
    """Each candidate's evidence from the photo's text, on the words that tell the candidates apart: + found
    for the words it holds, - found for the others'."""
    return _evidence(photo_text, *telling(candidates))


def _evidence(photo_text: str, words_: list[str], held: np.ndarray) -> np.ndarray:
    """`evidence` on the telling words and which candidate holds each (words x candidates)."""
    photo = normalise(photo_text)
    seen = np.array([found(word, photo) for word in words_], np.float64)
    return (np.where(held, 1.0, -1.0) * seen[:, None]).sum(axis=0) if words_ else np.zeros(held.shape[1])


def verify_labelled(row_scores: np.ndarray, labels: Sequence[str], texts: Sequence[str],
                    read_photo: Callable[[int], str],
                    settings: TextVerify = TextVerify()) -> tuple[np.ndarray, np.ndarray]:
    """`verify_rows` for gallery rows given by their labels and texts (a label's words: all its rows')."""
    row_labels, label_words = labelled_words(tuple(labels), tuple(texts))
    return verify_rows(row_scores, row_labels, label_words, read_photo, settings)


@lru_cache(maxsize=4)
def labelled_words(labels: tuple[str, ...], texts: tuple[str, ...]) -> tuple[np.ndarray, list[frozenset[str]]]:
    """Each row's label id (`label_ids`) and each label's words, all its rows' (kept for the galleries in use:
    the matcher asks for every batch of photos)."""
    row_labels = label_ids(list(labels))
    label_words = [frozenset()] * (int(row_labels.max()) + 1 if len(row_labels) else 0)
    for label, text in zip(row_labels, texts, strict=True):
        label_words[label] = label_words[label] | words(text)
    return row_labels, label_words


def verify_rows(row_scores: np.ndarray, row_labels: np.ndarray, label_words: Sequence[frozenset[str]],
                read_photo: Callable[[int], str], settings: TextVerify = TextVerify()) -> tuple[np.ndarray, np.ndarray]:
    """(Q, rows) scores with text verification, and which photos were read. `row_labels`: each row's label
    index into `label_words`; `read_photo(q)`: photo q's text (read only when its candidates disagree)."""
    out = np.array(row_scores, dtype=np.float32, copy=True)
    read = np.zeros(len(out), dtype=bool)
    present, column = np.unique(row_labels, return_inverse=True)  # the labels these rows hold, ascending
    for q, row in enumerate(out):
        per_label = np.full(len(present), -np.inf, dtype=np.float32)
        np.maximum.at(per_label, column, row)
        order = np.argsort(-per_label, kind="stable")[:settings.candidates]  # ties: the lower label id first
        order = order[per_label[order] >= per_label[order[0]] - settings.window]
        candidates = [label_words[c] for c in present[order]]
        telling_words, held = telling(candidates) if len(set(candidates)) > 1 else ([], None)
        if not telling_words:  # the candidates' words agree: reading the photo cannot change the answer
            continue
        read[q] = True
        scored = _evidence(read_photo(q), telling_words, held)
        if not scored.any():
            continue
        shift = np.zeros(len(present), dtype=np.float32)
        shift[order] = settings.weight * (scored - scored.max())
        row += shift[column]
    return out, read
