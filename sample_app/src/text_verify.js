// Text verification, as src/pocketvec/runtime/text_verify.py: when the labels whose scores are near the best
// carry words that are not common to all of them, the photo's text is read and each of those labels moves
// by weight x (its evidence - the best candidate's evidence), evidence being + how well each of its telling
// words is found on the photo, - how well each of the other candidates' is (docs/TEXT_VERIFICATION.md).

// letter <-> digit shapes OCR confuses: half an edit (digits among themselves stay whole edits: 2015 / 2016)
const CONFUSABLE = ["o0", "l1", "i1", "s5", "b8", "z2", "g9", "q9", "t7", "a4"];
const CONFUSED = Object.fromEntries([...new Set(CONFUSABLE.join(""))].map(
  (a) => [a, CONFUSABLE.filter((pair) => pair.includes(a)).flatMap((pair) => [...pair]).filter((b) => b !== a)]));
const DECIMAL = /(?<=\p{Nd})[.,](?=\p{Nd})/gu;
const TOKEN = /[\p{L}\p{N}]+(?:\.[\p{L}\p{N}]+)*/gu; // Python's [^\W_]+(?:\.[^\W_]+)*
const DIGIT = /\p{Nd}/u;
const MIN_TOKEN = 2, SHORT = 4, FOUND_FROM = 0.75, SAME_FROM = 0.8;

/** When and how much the printed text moves the scores: TextVerify's defaults. */
export const TEXT_VERIFY = Object.freeze({ weight: 0.2, window: 0.2, candidates: 5 });

const byCodePoint = (a, b) => {
  const x = [...a], y = [...b];
  for (let i = 0; i < Math.min(x.length, y.length); i++) {
    if (x[i] !== y[i]) return x[i].codePointAt(0) - y[i].codePointAt(0);
  }
  return x.length - y.length;
};
const len = (word) => [...word].length; // in code points, as Python

/** Lower case (str.casefold's usual cases), accents off, decimal commas as points, anything else one space. */
export function normalise(text) {
  text = text.toLowerCase().replace(/ß/g, "ss").replace(/ς/g, "σ").normalize("NFKD").replace(/\p{Mn}/gu, "");
  return (text.replace(DECIMAL, ".").match(TOKEN) || []).join(" ");
}

/** The words of an item's text that can tell it apart. */
export function words(text) {
  return new Set(normalise(text).split(" ").filter((w) => len(w) >= MIN_TOKEN));
}

/** The fewest edits that turn `word` into some substring of `text` (spaces ignored; a look-alike letter for a
 * digit, or back, is half an edit): Sellers' approximate substring match. */
export function edits(word, text) {
  const target = text.replaceAll(" ", "");
  if (target.includes(word)) return 0;
  const codes = [...target], n = codes.length;
  let previous = new Float64Array(n + 1);
  [...word].forEach((char, i) => {
    const current = new Float64Array(n + 1), confused = CONFUSED[char] || [];
    current[0] = i + 1;
    for (let j = 1; j <= n; j++) {
      const swap = codes[j - 1] === char ? 0 : confused.includes(codes[j - 1]) ? 0.5 : 1;
      current[j] = Math.min(previous[j - 1] + swap, previous[j] + 1, current[j - 1] + 1);
    }
    previous = current;
  });
  return Math.min(...previous);
}

/** How well `word` appears in `photo` (both normalised): 0 (not) .. 1 (exactly). */
export function found(word, photo) {
  if (len(word) < SHORT) return photo.split(" ").includes(word) ? 1 : 0;
  const cost = edits(word, photo);
  if (DIGIT.test(word)) return cost <= 0.5 ? 1 - cost : 0;
  const right = 1 - cost / len(word);
  return Math.min(Math.max((right - FOUND_FROM) / (1 - FOUND_FROM), 0), 1);
}

/** Whether an item's words hold `word`: exactly, or a word of letters nearly (the same print read twice). */
export function holds(word, own) {
  if (own.has(word)) return true;
  if (len(word) < SHORT || DIGIT.test(word)) return false;
  return 1 - edits(word, [...own].sort(byCodePoint).join(" ")) / len(word) >= SAME_FROM;
}

/** The words that tell the candidates apart, and which candidate holds each ([words][candidates]). */
export function telling(candidates) {
  const all = new Set(candidates.flatMap((c) => [...c]));
  const common = [...all].filter((w) => candidates.every((c) => c.has(w)));
  const out = { words: [], held: [] };
  for (const w of [...all].filter((x) => !common.includes(x)).sort(byCodePoint)) {
    const held = candidates.map((own) => holds(w, own));
    if (held.every(Boolean)) continue;
    out.words.push(w);
    out.held.push(held);
  }
  return out;
}

/** Each candidate's evidence from the photo's text on the telling words: + found for its words, - for others'. */
export function evidence(photoText, { words: telling_, held }, count) {
  const photo = normalise(photoText), scored = new Array(count).fill(0);
  telling_.forEach((word, i) => {
    const seen = found(word, photo);
    held[i].forEach((h, c) => { scored[c] += h ? seen : -seen; });
  });
  return scored;
}

const sameSet = (a, b) => a.size === b.size && [...a].every((w) => b.has(w));

/** Label-level scores [{label, score}] (best first) verified by the printed text: the candidates (at most
 * `candidates` labels within `window` of the best, ties by label as Python's label ids) are read about only
 * when their words differ; `labelWords`: label -> Set of words; `readPhoto()`: the photo's text (async).
 * Returns {top (re-sorted), read (whether the photo was read), text (what was read, or null)}. */
export async function verifyScores(top, labelWords, readPhoto, settings = TEXT_VERIFY) {
  const ranked = [...top].sort((a, b) => b.score - a.score || byCodePoint(a.label, b.label));
  const first = ranked.length ? ranked[0].score : 0;
  const order = ranked.slice(0, settings.candidates).filter((t) => t.score >= first - settings.window);
  const candidates = order.map((t) => labelWords.get(t.label) || new Set());
  const differ = candidates.some((c) => !sameSet(c, candidates[0]));
  const tell = differ ? telling(candidates) : { words: [], held: [] };
  if (!tell.words.length) return { top: ranked, read: false, text: null };
  const text = await readPhoto();
  const scored = evidence(text, tell, candidates.length), most = Math.max(...scored);
  if (scored.every((s) => s === 0)) return { top: ranked, read: true, text };
  const f = Math.fround, shift = new Map(order.map((t, i) => [t.label, f(settings.weight * (scored[i] - most))]));
  const moved = ranked.map((t) => ({ ...t, score: shift.has(t.label) ? f(f(t.score) + shift.get(t.label)) : t.score }));
  return { top: moved.sort((a, b) => b.score - a.score || byCodePoint(a.label, b.label)), read: true, text };
}

/** Each label's words: all its rows' texts' (text_verify.labelled_words). */
export function labelWords(rows) {
  const out = new Map();
  for (const r of rows) {
    const own = out.get(r.label) || new Set();
    for (const w of words(r.text || "")) own.add(w);
    out.set(r.label, own);
  }
  return out;
}
