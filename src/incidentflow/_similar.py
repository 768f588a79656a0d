"""Similar incidents: the text every store searches, and the ranking done in memory.

An incident is found by four fields, the same in every store:

- ``title``: what broke, in a line;
- ``symptom``: the triage checklist's answer to ``symptom``;
- ``root_cause``: the root cause statement and its process gap;
- ``gotcha``: the KB gotcha's symptom, root cause, fix and early signs.

:class:`SearchText` extracts them from a snapshot; stores with a full-text
index keep one row of it per incident and rewrite that row only when it
changes (:func:`search_text_changed`), so commands that add evidence or notes
pay nothing for search.

A query is a bag of words (:func:`query_terms`): lower-cased, stop words
and one-letter words left out, at most
:data:`MAX_QUERY_TERMS` of them. An incident matches when any of its fields
holds any of the words. SQLite ranks with FTS5's ``bm25()``, PostgreSQL with
``ts_rank_cd``, and the other stores with :func:`rank`, a BM25F score computed
in memory with a light English stemmer; each weighs the fields as
:data:`FIELD_WEIGHTS` says. Each store quotes or binds every word, so no text
is ever read as query syntax (FTS5's ``NEAR``, ``AND``, ``col:``, ``*``;
tsquery's ``&``, ``|``, ``!``).
"""

from __future__ import annotations

import math
import re
import unicodedata
from collections import Counter
from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import NamedTuple

import attrs

from ._model import Incident, Severity, State

__all__ = [
    "FIELDS",
    "FIELD_WEIGHTS",
    "MAX_QUERY_TERMS",
    "MAX_RESULTS",
    "SearchDocument",
    "SearchText",
    "SimilarIncident",
    "indexed",
    "query_terms",
    "rank",
    "search_text_changed",
    "stem",
    "words",
]

#: The searchable fields of an incident, in the order every store keeps them.
FIELDS: tuple[str, str, str, str] = ("title", "symptom", "root_cause", "gotcha")

#: How much a word found in each field of :data:`FIELDS` counts: the title and
#: the symptom say most about what a responder sees, the gotcha least.
FIELD_WEIGHTS: tuple[float, float, float, float] = (2.0, 2.0, 1.5, 1.0)

#: The most similar incidents one search returns.
MAX_RESULTS = 100

#: The most words a query keeps (the first ones: title, then symptom, ...).
MAX_QUERY_TERMS = 64

#: The triage question whose answer is searched as the symptom.
SYMPTOM_QUESTION = "symptom"

_WORD = re.compile(r"[^\W_]+")

# Words that say nothing about what broke: the Snowball English stop words, which
# PostgreSQL's "english" configuration drops too, so every store ignores the same ones.
_STOP_TEXT = """
    i me my myself we our ours ourselves you your yours yourself yourselves he him his
    himself she her hers herself it its itself they them their theirs themselves what
    which who whom this that these those am is are was were be been being have has had
    having do does did doing a an the and but if or because as until while of at by for
    with about against between into through during before after above below to from up
    down in out on off over under again further then once here there when where why how
    all any both each few more most other some such no nor not only own same so than too
    very s t can will just don should now
"""
_STOP_WORDS = frozenset(_STOP_TEXT.split())

# BM25's usual constants: term-frequency saturation and length normalisation.
_K1 = 1.2
_B = 0.75


@attrs.frozen
class SimilarIncident:
    """A past incident like the one searched for, with its KB gotcha if it has one.

    Attributes:
        incident_id: The similar incident.
        title: Its title.
        severity: Its current severity.
        state: Its current state (closed and dismissed incidents are found too).
        declared_at: When it was declared.
        score: How similar it is; higher is more similar. Scores compare only
            within one answer: each store ranks in its own way.
        matched: The fields that share words with the query, in the order
            ``"title"``, ``"symptom"``, ``"root_cause"``, ``"gotcha"``.
        symptom: Its triage answer to ``symptom`` (``""`` if none).
        root_cause: Its root cause statement and, on a second line, the
            process gap (``""`` before the root cause is set).
        gotcha_slug: The slug of its KB gotcha (the file
            ``<knowledge_dir>/<slug>.md``), ``None`` until one is written.
        type: Its incident type (``availability``, ``security``, ...).

    """

    incident_id: str
    title: str
    severity: Severity
    state: State
    declared_at: datetime
    score: float
    matched: tuple[str, ...]
    symptom: str = ""
    root_cause: str = ""
    gotcha_slug: str | None = None
    type: str = attrs.field(default="availability", kw_only=True)


class SearchText(NamedTuple):
    """The searchable text of one incident, as every store indexes it."""

    title: str
    symptom: str
    root_cause: str
    gotcha: str
    gotcha_slug: str | None

    @classmethod
    def of(cls, incident: Incident) -> SearchText:
        """The searchable text of ``incident``."""
        symptom = ""
        for answer in incident.triage_answers:
            if answer.question == SYMPTOM_QUESTION and answer.retracted is None:
                symptom = answer.answer
        cause = incident.root_cause
        root_cause = "" if cause is None else _lines(cause.statement, cause.process_gap)
        kb = incident.kb_entry
        if kb is None:
            return cls(incident.title, symptom, root_cause, "", None)
        gotcha = _lines(kb.symptom, kb.root_cause, kb.fix, kb.early_signs)
        return cls(incident.title, symptom, root_cause, gotcha, kb.slug)

    @property
    def fields(self) -> tuple[str, str, str, str]:
        """The four searched texts, in the order of :data:`FIELDS`."""
        return (self.title, self.symptom, self.root_cause, self.gotcha)

    @property
    def query(self) -> str:
        """All of the text, to search for incidents like this one."""
        return _lines(*self.fields)


def _lines(*texts: str) -> str:
    return "\n".join(text for text in texts if text)


def search_text_changed(before: Incident | None, after: Incident) -> bool:
    """True when ``after`` has other searchable text than ``before`` (``None``: a new incident).

    Cheap when nothing searchable changed, as on most commands: evolving a
    snapshot keeps the very objects of the fields it leaves alone.
    """
    if before is None:
        return True
    if (
        before.title is after.title
        and before.triage_answers is after.triage_answers
        and before.root_cause is after.root_cause
        and before.kb_entry is after.kb_entry
    ):
        return False
    return SearchText.of(before) != SearchText.of(after)


def words(text: str) -> list[str]:
    """The words of ``text``: runs of letters and digits (NFC), lower-cased.

    Accents stay: each store decides whether "cafe" finds "café" (SQLite and
    the in-memory ranking fold them, PostgreSQL's ``english`` configuration
    does not).
    """
    if not text.isascii():
        text = unicodedata.normalize("NFC", text)
    return _WORD.findall(text.lower())


def indexed(text: str) -> str:
    """``text`` as the full-text indexes get it: its :func:`words`, separated by spaces.

    So SQLite's and PostgreSQL's parsers split nothing differently from the
    queries (PostgreSQL would keep ``api.example.com`` or ``/var/lib`` whole,
    FTS5 ``cpu>90``), and each index matches exactly the words a query holds.
    """
    return " ".join(words(text))


def _key(word: str) -> str:
    """What the in-memory ranking compares: the word without accents, stemmed."""
    if not word.isascii():
        decomposed = unicodedata.normalize("NFKD", word)
        word = "".join(c for c in decomposed if not unicodedata.combining(c))
    return stem(word)


def query_terms(text: str) -> tuple[str, ...]:
    """The distinct words of ``text`` worth searching for, in order, at most MAX_QUERY_TERMS.

    >>> query_terms("Checkout returns 500 -- the checkout API is DOWN again")
    ('checkout', 'returns', '500', 'api')
    """
    terms: dict[str, None] = {}
    for word in words(text):
        if word in _STOP_WORDS or (len(word) == 1 and not word.isdigit()):
            continue
        terms[word] = None
        if len(terms) == MAX_QUERY_TERMS:
            break
    return tuple(terms)


def stem(word: str) -> str:
    """A light English stem: plural, ``-ed`` and ``-ing`` endings and a final ``e`` dropped.

    Crude but symmetric (queries and incidents are stemmed alike), so
    "timeouts" finds "timeout" and "failed" finds "failing".

    >>> [stem(w) for w in ("timeouts", "caches", "cache", "failed", "failing", "process")]
    ['timeout', 'cach', 'cach', 'fail', 'fail', 'process']
    """
    if len(word) <= 3 or not word.isalpha():
        return word
    for suffix in ("ing", "ed", "s"):
        if word.endswith(suffix) and not word.endswith("ss") and len(word) - len(suffix) >= 3:
            word = word[: -len(suffix)]
            break
    if word.endswith("e") and len(word) > 3:
        word = word[:-1]
    return word


@attrs.frozen
class SearchDocument:
    """One incident as the in-memory ranking sees it.

    Attributes:
        incident_id: The incident.
        severity: Its current severity.
        state: Its current state.
        declared_at: When it was declared (newer incidents win ties).
        text: Its searchable text.
        type: Its incident type.

    """

    incident_id: str
    severity: Severity
    state: State
    declared_at: datetime
    text: SearchText
    type: str = attrs.field(default="availability", kw_only=True)

    @classmethod
    def of(cls, incident: Incident) -> SearchDocument:
        """The document of a snapshot."""
        return cls(
            incident.id,
            incident.severity,
            incident.state,
            incident.declared_at,
            SearchText.of(incident),
            type=incident.type,
        )

    def found(self, score: float, matched: Iterable[str]) -> SimilarIncident:
        """The answer for this document with ``score`` and the fields that ``matched``."""
        hits = frozenset(matched)
        return SimilarIncident(
            incident_id=self.incident_id,
            title=self.text.title,
            severity=self.severity,
            state=self.state,
            declared_at=self.declared_at,
            score=score,
            matched=tuple(name for name in FIELDS if name in hits),
            symptom=self.text.symptom,
            root_cause=self.text.root_cause,
            gotcha_slug=self.text.gotcha_slug,
            type=self.type,
        )


def rank(
    documents: Iterable[SearchDocument],
    terms: Sequence[str],
    *,
    exclude: str | None = None,
    limit: int = 5,
    types: frozenset[str] | None = None,
) -> list[SimilarIncident]:
    """The ``limit`` documents most like the query ``terms``, best first (BM25F).

    Each field's word counts are weighted by :data:`FIELD_WEIGHTS`; a word
    counts more the fewer incidents hold it. ``exclude`` is left out of the
    answer (it still counts for how rare a word is, as in an index), and so
    are documents whose type is not one of ``types``, when given. Ties go
    to the newer incident, then to the greater id. Documents sharing no word
    with the query are not returned.
    """
    query = tuple(dict.fromkeys(_key(term) for term in terms))
    if not query or limit < 1:
        return []
    wanted = frozenset(query)
    analysed: list[tuple[SearchDocument, list[Counter[str]], float]] = []
    holding: Counter[str] = Counter()
    for document in documents:
        counts = [Counter(_key(w) for w in words(text)) for text in document.text.fields]
        length = sum(w * c.total() for w, c in zip(FIELD_WEIGHTS, counts, strict=True))
        holding.update(term for term in wanted if any(term in c for c in counts))
        analysed.append((document, counts, length))
    if not analysed:
        return []
    total = len(analysed)
    average = sum(length for _, _, length in analysed) / total or 1.0
    rarity = {
        term: math.log(1 + (total - holding[term] + 0.5) / (holding[term] + 0.5)) for term in query
    }
    scored: list[tuple[float, SearchDocument, list[str]]] = []
    for document, counts, length in analysed:
        if document.incident_id == exclude or (types is not None and document.type not in types):
            continue
        score = 0.0
        norm = _K1 * (1 - _B + _B * length / average)
        for term in query:
            frequency = sum(w * c[term] for w, c in zip(FIELD_WEIGHTS, counts, strict=True))
            if frequency:
                score += rarity[term] * frequency * (_K1 + 1) / (frequency + norm)
        if score > 0:
            matched = [name for name, c in zip(FIELDS, counts, strict=True) if wanted & c.keys()]
            scored.append((score, document, matched))
    scored.sort(key=lambda s: (s[0], s[1].declared_at, s[1].incident_id), reverse=True)
    return [document.found(score, matched) for score, document, matched in scored[:limit]]
