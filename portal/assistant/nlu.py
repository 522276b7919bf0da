"""Understanding a question: normalisation, segmentation, intent.

Members write the way people chat: full-width punctuation, traditional
characters, typos, Chinese and English in one line. Everything is folded
first (NFKC, traditional to simplified, case), then cut into tokens: jieba
words and character bigrams for Chinese, words with a light stem for
English, where a word nobody wrote in training becomes its closest known
spelling (so "compensaton" still meets "compensation").

The intent is the label of the nearest training phrasings under BM25
(a k-nearest-neighbour classifier with a lexical similarity): the phrasings
live in ``intents.py`` and are written for training only; the evaluation set
under ``eval/`` is never read here. Heavy resources (jieba's dictionary,
OpenCC's tables, the index) load once per process, on first use.
"""

from __future__ import annotations

import difflib
import functools
import logging
import math
import re
import threading
import unicodedata
from dataclasses import dataclass
from datetime import date, time, timedelta

from .intents import INTENTS, TRAINING

MAX_QUESTION_LENGTH = 500


def visible(text: str) -> str:
    """``text`` as a reader sees it: white space of any kind becomes a space;
    other control, format (bidi overrides, zero-width marks), surrogate and
    unassigned characters go. Every question and support message passes
    here before it is answered or stored: PostgreSQL refuses NUL and lone
    surrogates (a 500), and an override would reorder what staff read."""
    return "".join(
        " " if ch.isspace() else ch
        for ch in text
        if ch.isspace() or unicodedata.category(ch)[0] != "C"
    )


# Weights of a label's nearest phrasings (k-NN with k = 3): the nearest
# counts most, the next ones confirm it.
NEIGHBOUR_WEIGHTS = (1.0, 0.5, 0.25)
# Common misspellings in this domain (homophones typed by pinyin input).
_ZH_TYPOS = {"申述": "申诉", "补尝": "补偿", "优惠劵": "优惠券", "掉现": "掉线", "凭正": "凭证"}

_CJK = re.compile(r"[\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff]")
_CJK_RUN = re.compile(r"[\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff]+")
_LATIN_WORD = re.compile(r"[a-z][a-z0-9']*")
MEMBER_NO = re.compile(r"\bkm\s?\d{8}\b", re.IGNORECASE)
_MEMBER_NO_LOOSE = re.compile(r"(?<![a-z0-9])km\s?\d{6,10}(?![0-9])", re.IGNORECASE)
_TIME = re.compile(r"(?<!\d)([01]?\d|2[0-3])[:点點时時](\s?[0-5]\d)?(?!\d)")
_DATE = re.compile(
    r"(?<!\d)(?:(\d{4})[-/.年])?(1[0-2]|0?[1-9])[-/.月](3[01]|[12]\d|0?[1-9])(?:日|号|號)?(?!\d)"
)
# Days named relative to today, resolved later in the member's time zone:
# ("offset", n) is n days from today, ("last_week", k) weekday k (Monday 0)
# of the previous calendar week (上周五), ("last", k) the most recent past
# weekday k before today ("last Friday").
_ZH_WEEKDAYS = {"一": 0, "二": 1, "三": 2, "四": 3, "五": 4, "六": 5, "日": 6, "天": 6}
_EN_WEEKDAYS = {
    "monday": 0,
    "tuesday": 1,
    "wednesday": 2,
    "thursday": 3,
    "friday": 4,
    "saturday": 5,
    "sunday": 6,
}
_RELATIVE = re.compile(
    r"大前天|前天|昨天|昨晚|昨日|今天|今晚|今日|"
    r"上(?:周|星期|礼拜)([一二三四五六日天])|"
    r"(?:the )?day before yesterday|yesterday|today|tonight|this morning|"
    r"last (monday|tuesday|wednesday|thursday|friday|saturday|sunday)"
)
_RELATIVE_OFFSETS = {
    "大前天": -3,
    "前天": -2,
    "昨天": -1,
    "昨晚": -1,
    "昨日": -1,
    "今天": 0,
    "今晚": 0,
    "今日": 0,
    "day before yesterday": -2,
    "the day before yesterday": -2,
    "yesterday": -1,
    "today": 0,
    "tonight": 0,
    "this morning": 0,
}
_MINUTES = re.compile(r"(\d{1,4})\s*(?:分钟|分鐘|分|mins?\b|minutes?\b)", re.IGNORECASE)
_EMAIL = re.compile(r"[\w.+-]+@[\w-]+(?:\.[\w-]+)+")
_PHONE = re.compile(r"(?<!\d)1\d{10}(?!\d)|(?<!\d)\+?\d[\d -]{8,}\d(?!\d)")
_LONG_NUMBER = re.compile(r"\d{5,}")

# Only words that carry no intent: "my", "how", "when" and "why" do ("my
# appeal" asks for a status, "how ... appeal" for the way to file one).
_EN_STOP = frozenset(
    [
        "a",
        "an",
        "the",
        "to",
        "of",
        "and",
        "or",
        "but",
        "so",
        "please",
        "pls",
        "plz",
        "hi",
        "hello",
        "hey",
        "thanks",
        "thank",
        "just",
        "there",
        "here",
        "um",
        "uh",
    ]
)
_ZH_STOP = frozenset(
    [
        "的",
        "了",
        "吗",
        "呢",
        "吧",
        "啊",
        "呀",
        "嘛",
        "么",
        "哦",
        "喔",
        "哈",
        "嗯",
        "呃",
        "请",
        "请问",
        "一下",
        "，",
        "。",
        "？",
        "！",
        ",",
        ".",
        "?",
        "!",
    ]
)
# Words jieba does not know as one word in this domain.
_DOMAIN_WORDS = (
    "掉线",
    "断线",
    "补时",
    "补偿",
    "申诉",
    "凭证",
    "会员",
    "到期",
    "优惠券",
    "两步验证",
    "人工客服",
    "转人工",
    "阈值",
    "上限",
    "封顶",
    "导出",
    "账本",
    "验签",
    "服务器",
    "节点",
    "维护",
    "故障",
    "卡密",
    "激活码",
    "兑换码",
    "充值卡",
)


def _load_jieba():
    import jieba

    jieba.setLogLevel(logging.WARNING)
    jieba.initialize()
    for word in _DOMAIN_WORDS:
        jieba.add_word(word, freq=20000)
    return jieba


def _load_opencc():
    from opencc import OpenCC

    return OpenCC("t2s")


class _Lazy:
    """One resource per process, built on first use under a lock (threads of
    one gunicorn worker share it)."""

    def __init__(self, factory):
        self._factory = factory
        self._value = None
        self._lock = threading.Lock()

    def get(self):
        if self._value is None:
            with self._lock:
                if self._value is None:
                    self._value = self._factory()
        return self._value


_jieba = _Lazy(_load_jieba)
_opencc = _Lazy(_load_opencc)


def normalise(text: str) -> str:
    """Full-width to half-width (NFKC), traditional to simplified, lower
    case, control characters out, whitespace collapsed, length capped."""
    text = unicodedata.normalize("NFKC", text or "")
    text = "".join(" " if unicodedata.category(ch)[0] == "C" else ch for ch in text)
    text = " ".join(text.split())[:MAX_QUESTION_LENGTH]
    if _CJK.search(text):
        text = _opencc.get().convert(text)
        for typo, word in _ZH_TYPOS.items():
            text = text.replace(typo, word)
    return text.casefold()


def language_of(text: str) -> str:
    """ "zh-hans" when Chinese characters carry the question, else "en"."""
    cjk = len(_CJK.findall(text))
    latin = len(_LATIN_WORD.findall(text.casefold()))
    return "zh-hans" if cjk and cjk >= latin else "en"


def _stem(word: str) -> str:
    for suffix in ("ing", "ed", "es", "s"):
        if len(word) > len(suffix) + 2 and word.endswith(suffix):
            return word[: -len(suffix)]
    return word


def tokens(normalised: str) -> list[str]:
    """Tokens of an already normalised text (see ``normalise``)."""
    text = MEMBER_NO.sub(" 〈member〉 ", normalised)
    text = _DATE.sub(" 〈date〉 ", text)
    text = _TIME.sub(" 〈time〉 ", text)
    # A past day is a date, whichever way it is said ("today" stays a word:
    # "is anything down today" asks about now).
    text = _RELATIVE.sub(
        lambda m: m.group(0) if _RELATIVE_OFFSETS.get(m.group(0)) == 0 else " 〈date〉 ", text
    )
    out: list[str] = []
    out.extend(t.strip("〈〉") for t in re.findall(r"〈\w+〉", text))
    if re.search(r"\d", text):
        out.append("num")
    for run in _CJK_RUN.findall(text):
        words = [w for w in _jieba.get().lcut(run) if w.strip() and w not in _ZH_STOP]
        out.extend(words)
        out.extend(run[i : i + 2] for i in range(len(run) - 1))
        if len(run) == 1 and run not in _ZH_STOP:
            out.append(run)
    for word in _LATIN_WORD.findall(text):
        word = word.strip("'")
        if word in _EN_STOP or len(word) < 2:
            continue
        out.append(_stem(word))
    return out


def correct(toks: list[str], vocabulary: frozenset[str]) -> list[str]:
    """Typos: an English token the vocabulary lacks becomes its closest known
    spelling ("compensaton" -> "compensation"), when one is close enough."""
    fixed = []
    for tok in toks:
        if tok in vocabulary or not tok.isascii() or len(tok) < 4:
            fixed.append(tok)
            continue
        close = difflib.get_close_matches(tok, _ascii_vocabulary(vocabulary), n=1, cutoff=0.8)
        fixed.append(close[0] if close else tok)
    return fixed


@functools.cache
def _ascii_vocabulary(vocabulary: frozenset[str]) -> tuple[str, ...]:
    return tuple(sorted(t for t in vocabulary if t.isascii() and len(t) >= 3))


@dataclass(frozen=True)
class Entities:
    """What a question names that the answer may need: never trusted as a
    fact, only used to pick which of the member's records to read."""

    member_numbers: tuple[str, ...]
    dates: tuple[date, ...]
    times: tuple[time, ...]
    minutes: tuple[int, ...]
    relative_days: tuple[tuple[str, int], ...] = ()


def relative_days(normalised: str) -> tuple[tuple[str, int], ...]:
    """Days the question names relative to today ("昨天", "last Friday")."""
    found = []
    for match in _RELATIVE.finditer(normalised):
        word, zh_day, en_day = match.group(0), match.group(1), match.group(2)
        if zh_day:
            found.append(("last_week", _ZH_WEEKDAYS[zh_day]))
        elif en_day:
            found.append(("last", _EN_WEEKDAYS[en_day]))
        else:
            found.append(("offset", _RELATIVE_OFFSETS[word]))
    return tuple(found)


def resolve_day(spec: tuple[str, int], today: date) -> date:
    """The calendar day ``spec`` (from ``relative_days``) names, seen from
    ``today`` (the member's local date)."""
    kind, n = spec
    if kind == "offset":
        return today + timedelta(days=n)
    if kind == "last_week":
        monday = today - timedelta(days=today.weekday() + 7)
        return monday + timedelta(days=n)
    back = (today.weekday() - n) % 7 or 7
    return today - timedelta(days=back)


def entities(normalised: str) -> Entities:
    numbers = tuple(
        m.group(0).replace(" ", "").upper() for m in _MEMBER_NO_LOOSE.finditer(normalised)
    )
    without_members = _MEMBER_NO_LOOSE.sub(" ", normalised)
    dates = []
    for match in _DATE.finditer(without_members):
        year, month, day = match.groups()
        try:
            dates.append(date(int(year) if year else 2000, int(month), int(day)))
        except ValueError:
            continue
    times = []
    for match in _TIME.finditer(_DATE.sub(" ", without_members)):
        hour, minute = match.groups()
        times.append(time(int(hour), int(minute.strip()) if minute else 0))
    minutes = tuple(int(m.group(1)) for m in _MINUTES.finditer(without_members))
    return Entities(numbers, tuple(dates), tuple(times), minutes, relative_days(without_members))


def redact(text: str) -> str:
    """The question without personal data, for the improvement log:
    member numbers, e-mail addresses, phone numbers and long numbers go."""
    text = _EMAIL.sub("[email]", text)
    text = _MEMBER_NO_LOOSE.sub("[member]", text)
    text = _PHONE.sub("[phone]", text)
    return _LONG_NUMBER.sub("[number]", text)


# --- classification -------------------------------------------------------


@dataclass(frozen=True)
class Classification:
    intent: str
    confidence: float
    runner_up: str
    scores: dict[str, float]


class _Classifier:
    def __init__(self):
        from rank_bm25 import BM25Okapi

        self.labels: list[str] = []
        corpus: list[list[str]] = []
        for label, phrasings in TRAINING.items():
            for phrasing in phrasings:
                toks = tokens(normalise(phrasing))
                if toks:
                    self.labels.append(label)
                    corpus.append(toks)
        self.bm25 = BM25Okapi(corpus)
        self.vocabulary = frozenset(t for doc in corpus for t in doc)

    def classify(self, toks: list[str]) -> Classification:
        toks = correct(toks, self.vocabulary)
        if not toks:
            return Classification("unknown", 0.0, "unknown", {})
        scores = self.bm25.get_scores(toks)
        per_label: dict[str, list[float]] = {}
        for label, score in zip(self.labels, scores, strict=True):
            per_label.setdefault(label, []).append(float(score))
        ranked = {
            label: sum(
                w * v for w, v in zip(NEIGHBOUR_WEIGHTS, sorted(values, reverse=True), strict=False)
            )
            / sum(NEIGHBOUR_WEIGHTS)
            for label, values in per_label.items()
        }
        order = sorted(ranked, key=ranked.get, reverse=True)
        best, second = order[0], order[1]
        top, runner = ranked[best], ranked[second]
        if top <= 0:
            return Classification("unknown", 0.0, second, ranked)
        # Margin over the runner-up, damped when the question shares little
        # with any phrasing (a short absolute score).
        margin = (top - runner) / top
        strength = 1 - math.exp(-top / 4)
        confidence = round(strength * (0.35 + 0.65 * margin), 3)
        return Classification(best, confidence, second, ranked)


_classifier = _Lazy(_Classifier)


def classify(normalised: str) -> Classification:
    return _classifier.get().classify(tokens(normalised))


def warm_up() -> None:
    """Load every resource now (benchmarks, worker start-up)."""
    _classifier.get()
    normalise("預熱")


__all__ = ["INTENTS", "classify", "entities", "language_of", "normalise", "redact", "tokens"]
