"""Deterministic English sentences from templates and word lists: text for benchmarking a
sentence encoder without downloading a data set."""

from __future__ import annotations

import random

SEED = 0

SUBJECTS = [
    "the engineer",
    "my grandmother",
    "a small dog",
    "the committee",
    "our neighbours",
    "the new teacher",
    "a tired nurse",
    "the orchestra",
    "two children",
    "the pilot",
    "a local farmer",
    "the city council",
    "the chef",
    "an old sailor",
    "the students",
    "my brother",
    "the museum guide",
    "a young programmer",
    "the team captain",
    "the baker",
]
VERBS = [
    "repaired",
    "painted",
    "visited",
    "described",
    "photographed",
    "cleaned",
    "ordered",
    "forgot",
    "borrowed",
    "discovered",
    "cooked",
    "designed",
    "sold",
    "measured",
    "found",
    "studied",
    "carried",
    "recommended",
    "built",
    "delivered",
]
ADJECTIVES = [
    "broken",
    "enormous",
    "quiet",
    "expensive",
    "ancient",
    "bright red",
    "wooden",
    "fragile",
    "mysterious",
    "brand new",
    "dusty",
    "colourful",
    "heavy",
    "delicate",
    "noisy",
    "cheap",
]
OBJECTS = [
    "bicycle",
    "piano",
    "garden fence",
    "bridge",
    "sailing boat",
    "kitchen table",
    "painting",
    "laptop",
    "cathedral",
    "soup",
    "train ticket",
    "telescope",
    "wedding cake",
    "spreadsheet",
    "violin",
    "roof",
    "map of the harbour",
    "letter",
    "greenhouse",
    "chess set",
]
PLACES = [
    "in the village",
    "near the station",
    "at the market",
    "behind the library",
    "by the lake",
    "in a crowded café",
    "on the mountain path",
    "at the hospital",
    "in the old factory",
    "on the beach",
    "downtown",
    "in the school yard",
]
TIMES = [
    "yesterday",
    "last winter",
    "early this morning",
    "after the storm",
    "before lunch",
    "on Sunday",
    "during the festival",
    "late at night",
    "in 1998",
    "every spring",
]
CLAUSES = [
    "because nobody else wanted to do it",
    "although it was raining heavily",
    "while the radio played old jazz songs",
    "so that the visitors could see it clearly",
    "even though the instructions were missing",
    "and then everyone went home for dinner",
    "but the results were disappointing",
    "which surprised the whole neighbourhood",
]
QUESTIONS = [
    "Why did {s} say that the {a} {o} was {p}?",
    "Has {s} ever {v} a {a} {o} {t}?",
    "Where can I find the {o} that {s} {v}?",
    "How long did it take {s} to deal with the {a} {o}?",
]
STATEMENTS = [
    "{S} {v} the {a} {o} {p} {t}.",
    "{S} {v} a {o}.",
    "{T}, {s} {v} the {o} {p}.",
    "{S} {v} the {a} {o} {p} {c}.",
    "According to the report, {s} {v} the {o} {t}, {c}.",
    "It was {s} who {v} the {a} {o}.",
    "The {o} {p} was {v} by {s} {t}.",
    "{S} {v} the {a} {o} {p} {t} {c}, and later {s2} {v2} a {a2} {o2} {p2}.",
]


def make_sentences(count: int, seed: int = SEED) -> list[str]:
    """`count` distinct English sentences from the templates and word lists above, the same
    ones on every run: statements and questions from 3 to about 45 words."""
    rng = random.Random(seed)
    sentences: list[str] = []
    seen: set[str] = set()
    templates = STATEMENTS + QUESTIONS
    while len(sentences) < count:
        s, s2 = rng.sample(SUBJECTS, 2)
        words = {
            "s": s,
            "S": s[0].upper() + s[1:],
            "s2": s2,
            "v": rng.choice(VERBS),
            "v2": rng.choice(VERBS),
            "a": rng.choice(ADJECTIVES),
            "a2": rng.choice(ADJECTIVES),
            "o": rng.choice(OBJECTS),
            "o2": rng.choice(OBJECTS),
            "p": rng.choice(PLACES),
            "p2": rng.choice(PLACES),
            "t": rng.choice(TIMES),
            "c": rng.choice(CLAUSES),
        }
        words["T"] = words["t"][0].upper() + words["t"][1:]
        sentence = rng.choice(templates).format(**words)
        if sentence not in seen:
            seen.add(sentence)
            sentences.append(sentence)
    return sentences
