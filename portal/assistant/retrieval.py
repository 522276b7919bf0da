"""BM25 over the help articles, per language.

The index holds each article's title (weighted by repetition), summary and
body exactly as the help centre renders it with the policy in force, so a
figure the assistant quotes from an article is the one the article shows.
Indexes are rebuilt when the policy version changes; otherwise kept for the
life of the process.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass

from portal import help as help_centre

from .nlu import normalise, tokens

TITLE_WEIGHT = 3
# Below this BM25 score an article is not a match worth citing.
MIN_SCORE = 1.5


@dataclass(frozen=True)
class Hit:
    article: help_centre.Article
    score: float
    language: str

    @property
    def slug(self) -> str:
        return self.article.slug

    @property
    def title(self) -> str:
        return self.article.title[self.language]

    @property
    def summary(self) -> str:
        return self.article.summary[self.language]


class _Index:
    def __init__(self, language: str, policy):
        from rank_bm25 import BM25Okapi

        limits = help_centre.body_limits()
        self.articles = list(help_centre.ARTICLES)
        corpus = []
        for article in self.articles:
            body = help_centre.plain_text(
                help_centre.render_body(article, language=language, policy=policy, limits=limits)
            )
            text = " ".join(
                [article.title[language]] * TITLE_WEIGHT + [article.summary[language], body]
            )
            corpus.append(tokens(normalise(text)))
        self.bm25 = BM25Okapi(corpus)


_indexes: dict[tuple[str, int], _Index] = {}
_lock = threading.Lock()


def _index(language: str, policy) -> _Index:
    key = (language, policy.version)
    index = _indexes.get(key)
    if index is None:
        with _lock:
            index = _indexes.get(key)
            if index is None:
                # Older policy versions' indexes are dropped with the new one.
                for stale in [k for k in _indexes if k[0] == language]:
                    del _indexes[stale]
                index = _indexes[key] = _Index(language, policy)
    return index


def search(normalised: str, *, language: str, policy, limit: int = 3) -> list[Hit]:
    """Articles best matching the question, best first (only real matches)."""
    language = language if language in help_centre.LANGUAGES else help_centre.LANGUAGES[0]
    toks = tokens(normalised)
    if not toks:
        return []
    index = _index(language, policy)
    scores = index.bm25.get_scores(toks)
    ranked = sorted(zip(scores, range(len(scores)), strict=True), key=lambda r: (-r[0], r[1]))
    return [
        Hit(index.articles[i], float(score), language)
        for score, i in ranked[:limit]
        if score >= MIN_SCORE
    ]


def article_by_slug(slug: str) -> help_centre.Article | None:
    return help_centre.article_by_slug(slug)
