"""Text verification: tell look-alikes apart by the words printed on them.

Each item's text is read once from its clean image at enrolment and kept in the gallery. At match time,
when the labels whose scores are near the best (`TextVerify.window`, at most `candidates`) carry words
that are not common to all of them, the photo's text is read and each of those labels is scored on
those words only: a word of the label found on the photo counts for it, a word of another candidate
found on the photo counts against it (a word nobody can find counts for no one). Found means: an
approximate substring of the photo's text (OCR drops spaces and confuses O/0, l/1, S/5 ...), graded
from 0 (at most 60 % of the word's characters right) to 1 (all). Each candidate's score then moves by
`weight` x (its evidence - the best candidate's evidence): the label the text agrees with keeps its
score, the others fall behind by `weight` per word; the accept rule follows as before. Photos whose
candidates' words agree, or where nothing legible is found, keep the visual answer.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

# letter <-> digit shapes OCR confuses: half an edit (digits among themselves stay whole edits: 2015 / 2016)
CONFUSABLE = ("o0", "l1", "i1", "s5", "b8", "z2", "g9", "q9", "t7", "a4")
CONFUSED = {a: [b for pair in CONFUSABLE for b in pair if a in pair and b != a] for a in "".join(CONFUSABLE)}
DECIMAL = re.compile(r"(?<=\d)[.,](?=\d)")
TOKEN = re.compile(r"[^\W_]+(?:\.[^\W_]+)*")
MIN_TOKEN = 2  # shorter words say nothing
FOUND_FROM = 0.6  # share of a word's characters right below which it counts as not found


@dataclass(frozen=True)
class TextVerify:
    """When and how much the printed text moves the scores (chosen on dev: docs/lab)."""

    weight: float = 0.1  # score per word of evidence
    window: float = 0.15  # labels within this of the best score are candidates
    candidates: int = 5  # at most this many, best first


def normalise(text: str) -> str:
    """Lower case, accents off, decimal commas as points, runs of anything else as one space."""
    text = unicodedata.normalize("NFKD", text.casefold())
    text = "".join(c for c in text if not unicodedata.combining(c))
    return " ".join(TOKEN.findall(DECIMAL.sub(".", text)))


def words(text: str) -> frozenset[str]:
    """The words of an item's text that can tell it apart."""
    return frozenset(w for w in normalise(text).split() if len(w) >= MIN_TOKEN)


def found(word: str, photo: str) -> float:
    """How well `word` appears in `photo` (both normalised), spaces ignored: 0 (not) .. 1 (exactly)."""
    target = photo.replace(" ", "")
    if not word or not target:
        return 0.0
    if word in target:
        return 1.0
    # Sellers' approximate substring match: the fewest edits that turn `word` into some substring of `target`
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
        current = steps + np.minimum.accumulate(current - steps)  # or insert: current[j - 1] + 1
        previous = current
    right = 1.0 - float(previous.min()) / len(word)
    return float(np.clip((right - FOUND_FROM) / (1.0 - FOUND_FROM), 0.0, 1.0))


def evidence(photo_text: str, candidates: Sequence[frozenset[str]]) -> np.ndarray:
    """Each candidate's evidence from the photo's text: the words not common to all candidates, + found
    for a candidate's own words, - found for the others'."""
    common = frozenset.intersection(*candidates) if candidates else frozenset()
    telling = sorted(frozenset().union(*candidates) - common)
    photo = normalise(photo_text)
    seen = {word: found(word, photo) for word in telling}
    return np.array([sum(seen[w] if w in own else -seen[w] for w in telling) for own in candidates], np.float64)


def disagree(candidates: Sequence[frozenset[str]]) -> bool:
    """Whether the candidates' words differ, so that reading the photo can change the answer."""
    return len(candidates) > 1 and len(set(candidates)) > 1


def verify_labelled(row_scores: np.ndarray, labels: Sequence[str], texts: Sequence[str],
                    read_photo: Callable[[int], str],
                    settings: TextVerify = TextVerify()) -> tuple[np.ndarray, np.ndarray]:
    """`verify_rows` for gallery rows given by their labels and texts (a label's words: all its rows')."""
    row_labels = np.unique(np.asarray(labels), return_inverse=True)[1]
    label_words = [frozenset()] * (int(row_labels.max()) + 1 if len(row_labels) else 0)
    for label, text in zip(row_labels, texts, strict=True):
        label_words[label] = label_words[label] | words(text)
    return verify_rows(row_scores, row_labels, label_words, read_photo, settings)


def verify_rows(row_scores: np.ndarray, row_labels: np.ndarray, label_words: Sequence[frozenset[str]],
                read_photo: Callable[[int], str], settings: TextVerify = TextVerify()) -> tuple[np.ndarray, np.ndarray]:
    """(Q, rows) scores with text verification, and which photos were read. `row_labels`: each row's label
    index into `label_words`; `read_photo(q)`: photo q's text (read only when its candidates disagree)."""
    out = np.array(row_scores, dtype=np.float32, copy=True)
    read = np.zeros(len(out), dtype=bool)
    labels = len(label_words)
    for q, row in enumerate(out):
        per_label = np.full(labels, -np.inf, dtype=np.float32)
        np.maximum.at(per_label, row_labels, row)
        order = np.argsort(-per_label, kind="stable")[:settings.candidates]
        order = order[per_label[order] >= per_label[order[0]] - settings.window]
        candidates = [label_words[c] for c in order]
        if not disagree(candidates):
            continue
        read[q] = True
        scored = evidence(read_photo(q), candidates)
        if not scored.any():
            continue
        shift = np.zeros(labels, dtype=np.float32)
        shift[order] = settings.weight * (scored - scored.max())
        row += shift[row_labels]
    return out, read
