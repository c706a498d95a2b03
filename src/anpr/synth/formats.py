"""Plate formats: how each plate's text is drawn at random, laid out, and checked.

A :class:`PlateFormat` knows its region, a generator of random texts, the row layout (one or two rows), colour
schemes and a ``syntax`` regular expression that every generated label must match (labels are upper case without
spaces or dashes, the form used by ``labels.jsonl`` and the reader). South African formats come first; the
international ones keep the models from being SA-only.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np

DIGITS = "0123456789"
LETTERS = "ABCDEFGHIJKLMNOPQRSTUVWXYZ"
# South African registrations skip vowels and Q so that no words form.
SA_LETTERS = "BCDFGHJKLMNPRSTVWXYZ"
BR_LETTERS = LETTERS
UK_LETTERS = "ABCDEFGHJKLMNOPRSTUVWXYZ"
FR_LETTERS = "ABCDEFGHJKLMNPQRSTVWXYZ"  # SIV series: no I, O, U
IT_LETTERS = "ABCDEFGHJKLMNPRSTVWXYZ"  # no I, O, Q, U
NAMES = (
    "THABO",
    "LERATO",
    "SIPHO",
    "NALEDI",
    "ZANELE",
    "MANDLA",
    "PIETER",
    "ANNA",
    "JOHAN",
    "THANDI",
    "BONGANI",
    "KAGISO",
    "AYANDA",
    "LUNGI",
    "RUAN",
    "MARIA",
    "BOSS",
    "MYRIDE",
    "FAST1",
    "GOLF7",
    "SURF",
    "BRAAI",
    "LEKKER",
    "JOBURG",
    "KAAP",
    "PTA1",
    "DBN4",
    "ZOLA",
    "CHERYL",
    "NICO",
    "AMG63",
    "BMW1",
    "VW2",
    "X5",
    "A1",
    "7",
    "HOT",
    "TAXI",
)

Rng = np.random.Generator
TextGen = Callable[[Rng], tuple[str, ...]]


def pick(rng: Rng, chars: str, n: int) -> str:
    """``n`` characters drawn uniformly from ``chars``."""
    return "".join(chars[int(i)] for i in rng.integers(0, len(chars), size=n))


def choice(rng: Rng, items: Sequence[str]) -> str:
    """One item of ``items``."""
    return items[int(rng.integers(0, len(items)))]


@dataclass(frozen=True)
class Scheme:
    """Colours (RGB) of a plate: background, characters, border, optional band and caption text."""

    background: tuple[int, int, int]
    ink: tuple[int, int, int]
    border: tuple[int, int, int] | None = None
    band: tuple[int, int, int] | None = None


@dataclass(frozen=True)
class PlateFormat:
    """One plate format.

    ``generate`` returns the display groups of one row each (``("CA", "123-456")`` for one row; two rows are joined
    with ``"|"`` between groups: ``("CA", "|", "123-456")``). ``syntax`` matches the label (groups without spaces or
    dashes, top row first).
    """

    name: str
    region: str
    generate: TextGen
    syntax: str
    aspect: float  # width / height of the physical plate
    schemes: tuple[Scheme, ...]
    caption: tuple[str, ...] = ()  # small print at the top or bottom (province, state name)
    band: str = ""  # "eu" (blue strip on the left), "top" (coloured band at the top)
    glyph_style: str = "any"  # "br" forces the Brazilian Mandatory-like stroke glyphs
    weight: float = 1.0
    tags: tuple[str, ...] = field(default_factory=tuple)

    def label(self, groups: Sequence[str]) -> str:
        """The label of display ``groups``: upper case, no spaces, dashes or row breaks."""
        return "".join(g for g in groups if g != "|").replace("-", "").replace(" ", "")

    def matches(self, label: str) -> bool:
        """Whether ``label`` follows this format's syntax."""
        return re.fullmatch(self.syntax, label) is not None


WHITE = Scheme((240, 240, 236), (20, 20, 20), (30, 30, 30))
SA_WHITE = Scheme((236, 238, 232), (15, 15, 15), (25, 25, 25), (30, 70, 160))
SA_YELLOW = Scheme((238, 206, 60), (15, 15, 15), (25, 25, 25))
GP_SCHEME = Scheme((232, 236, 226), (10, 10, 10), (25, 25, 25), (235, 190, 40))
EU_WHITE = Scheme((238, 238, 234), (15, 15, 15), (20, 20, 20), (0, 51, 153))
UK_FRONT = Scheme((240, 240, 238), (10, 10, 10), None, (0, 51, 153))
UK_REAR = Scheme((246, 206, 20), (10, 10, 10), None, (0, 51, 153))
BR_GREY = Scheme((176, 178, 180), (25, 25, 28), (40, 40, 40))
BR_RED = Scheme((180, 40, 40), (235, 235, 235), (40, 40, 40))
US_SCHEMES = (
    Scheme((236, 236, 240), (20, 40, 120), (60, 60, 60), (20, 40, 120)),
    Scheme((240, 240, 236), (160, 20, 20), (60, 60, 60), (20, 40, 120)),
    Scheme((245, 232, 120), (20, 20, 20), (40, 40, 40), (20, 20, 20)),
    Scheme((220, 232, 245), (10, 20, 90), (60, 60, 60), (170, 30, 30)),
    Scheme((40, 40, 44), (235, 235, 235), (90, 90, 90), (220, 220, 220)),
    Scheme((236, 236, 236), (25, 25, 25), (60, 60, 60), (30, 110, 60)),
)
US_STATES = (
    "CALIFORNIA",
    "TEXAS",
    "FLORIDA",
    "NEW YORK",
    "OHIO",
    "ILLINOIS",
    "GEORGIA",
    "ARIZONA",
    "NEVADA",
    "OREGON",
    "MICHIGAN",
    "VIRGINIA",
    "COLORADO",
    "UTAH",
    "MAINE",
    "KANSAS",
    "IOWA",
    "MONTANA",
    "OKLAHOMA",
    "ALASKA",
)
BR_CITIES = ("SP - SAO PAULO", "RJ - RIO DE JANEIRO", "MG - BELO HORIZONTE", "PR - CURITIBA", "RS - PORTO ALEGRE")


def _sa_province(suffix: str) -> TextGen:
    """``ABC 123 EC``-style provinces: three letters, three digits, province suffix."""

    def gen(rng: Rng) -> tuple[str, ...]:
        return (pick(rng, SA_LETTERS, 3), pick(rng, DIGITS, 3), suffix)

    return gen


def _wc(rng: Rng) -> tuple[str, ...]:
    code = choice(rng, ("CA", "CY", "CF", "CAA", "CAW", "CJ", "CL", "CEY", "CK", "CX"))
    if rng.random() < 0.3:
        return (code, pick(rng, DIGITS, 5))
    return (code, pick(rng, DIGITS, 3) + "-" + pick(rng, DIGITS, 3))


def _kzn(rng: Rng) -> tuple[str, ...]:
    code = choice(rng, ("ND", "NP", "NU", "NN", "NT", "NK", "NS"))
    if rng.random() < 0.3:
        return (code, pick(rng, DIGITS, 5))
    return (code, pick(rng, DIGITS, 3) + "-" + pick(rng, DIGITS, 3))


def _gp(rng: Rng) -> tuple[str, ...]:
    return (pick(rng, SA_LETTERS, 2), pick(rng, DIGITS, 2), pick(rng, SA_LETTERS, 2), "GP")


def _limpopo(rng: Rng) -> tuple[str, ...]:
    return (pick(rng, SA_LETTERS, 3), pick(rng, DIGITS, 3), "L")


def _personal(suffixes: tuple[str, ...]) -> TextGen:
    def gen(rng: Rng) -> tuple[str, ...]:
        name = choice(rng, NAMES) if rng.random() < 0.5 else pick(rng, LETTERS + DIGITS, int(rng.integers(1, 8)))
        return (name, choice(rng, suffixes))

    return gen


def _sa_moto(rng: Rng) -> tuple[str, ...]:
    code = choice(rng, ("CA", "CY", "ND", "NP"))
    return (code, "|", pick(rng, DIGITS, 3) + "-" + pick(rng, DIGITS, 3))


def _eu_de(rng: Rng) -> tuple[str, ...]:
    return (
        pick(rng, LETTERS, int(rng.integers(1, 4))),
        pick(rng, LETTERS, int(rng.integers(1, 3))),
        pick(rng, DIGITS, int(rng.integers(1, 5))),
    )


def _eu_fr(rng: Rng) -> tuple[str, ...]:
    return (pick(rng, FR_LETTERS, 2) + "-" + pick(rng, DIGITS, 3) + "-" + pick(rng, FR_LETTERS, 2),)


def _eu_es(rng: Rng) -> tuple[str, ...]:
    return (pick(rng, DIGITS, 4), pick(rng, "BCDFGHJKLMNPRSTVWXYZ", 3))


def _eu_it(rng: Rng) -> tuple[str, ...]:
    return (pick(rng, IT_LETTERS, 2), pick(rng, DIGITS, 3), pick(rng, IT_LETTERS, 2))


def _uk(rng: Rng) -> tuple[str, ...]:
    return (pick(rng, UK_LETTERS, 2) + pick(rng, DIGITS, 2), pick(rng, UK_LETTERS, 3))


def _us(rng: Rng) -> tuple[str, ...]:
    kind = int(rng.integers(0, 6))
    if kind == 0:
        return (pick(rng, DIGITS, 1) + pick(rng, LETTERS, 3) + pick(rng, DIGITS, 3),)
    if kind == 1:
        return (pick(rng, LETTERS, 3) + "-" + pick(rng, DIGITS, 4),)
    if kind == 2:
        return (pick(rng, LETTERS, 3), pick(rng, DIGITS, 4))
    if kind == 3:
        return (pick(rng, DIGITS, 3), pick(rng, LETTERS, 3))
    if kind == 4:
        return (pick(rng, LETTERS + DIGITS, int(rng.integers(1, 8))),)
    return (pick(rng, DIGITS, 3) + "-" + pick(rng, DIGITS, 3),)


def _br_old(rng: Rng) -> tuple[str, ...]:
    return (pick(rng, BR_LETTERS, 3) + "-" + pick(rng, DIGITS, 4),)


def _br_moto(rng: Rng) -> tuple[str, ...]:
    return (pick(rng, BR_LETTERS, 3), "|", pick(rng, DIGITS, 4))


def _two_row_generic(rng: Rng) -> tuple[str, ...]:
    return (pick(rng, LETTERS, int(rng.integers(2, 4))), "|", pick(rng, DIGITS, int(rng.integers(3, 5))))


SA = "[A-Z]"
FORMATS: tuple[PlateFormat, ...] = (
    PlateFormat(
        "za-wc",
        "ZA",
        _wc,
        r"C[A-Z]{1,2}\d{5,6}",
        4.6,
        (SA_WHITE, SA_YELLOW),
        ("WESTERN CAPE",),
        "top",
        weight=3.0,
        tags=("sa",),
    ),
    PlateFormat(
        "za-gp",
        "ZA",
        _gp,
        r"[A-Z]{2}\d{2}[A-Z]{2}GP",
        4.6,
        (GP_SCHEME, SA_YELLOW),
        ("GAUTENG",),
        "top",
        weight=3.0,
        tags=("sa",),
    ),
    PlateFormat(
        "za-kzn",
        "ZA",
        _kzn,
        r"N[A-Z]\d{5,6}",
        4.6,
        (SA_WHITE, SA_YELLOW),
        ("KWAZULU-NATAL",),
        "top",
        weight=2.0,
        tags=("sa",),
    ),
    PlateFormat(
        "za-ec",
        "ZA",
        _sa_province("EC"),
        r"[A-Z]{3}\d{3}EC",
        4.6,
        (SA_WHITE, SA_YELLOW),
        ("EASTERN CAPE",),
        "top",
        tags=("sa",),
    ),
    PlateFormat(
        "za-fs",
        "ZA",
        _sa_province("FS"),
        r"[A-Z]{3}\d{3}FS",
        4.6,
        (SA_WHITE, SA_YELLOW),
        ("FREE STATE",),
        "top",
        tags=("sa",),
    ),
    PlateFormat(
        "za-lp", "ZA", _limpopo, r"[A-Z]{3}\d{3}L", 4.6, (SA_WHITE, SA_YELLOW), ("LIMPOPO",), "top", tags=("sa",)
    ),
    PlateFormat(
        "za-mp",
        "ZA",
        _sa_province("MP"),
        r"[A-Z]{3}\d{3}MP",
        4.6,
        (SA_WHITE, SA_YELLOW),
        ("MPUMALANGA",),
        "top",
        tags=("sa",),
    ),
    PlateFormat(
        "za-nw",
        "ZA",
        _sa_province("NW"),
        r"[A-Z]{3}\d{3}NW",
        4.6,
        (SA_WHITE, SA_YELLOW),
        ("NORTH WEST",),
        "top",
        tags=("sa",),
    ),
    PlateFormat(
        "za-nc",
        "ZA",
        _sa_province("NC"),
        r"[A-Z]{3}\d{3}NC",
        4.6,
        (SA_WHITE, SA_YELLOW),
        ("NORTHERN CAPE",),
        "top",
        tags=("sa",),
    ),
    PlateFormat(
        "za-personal",
        "ZA",
        _personal(("WP", "GP", "EC", "ZN", "MP", "NW")),
        r"[A-Z0-9]{1,7}(WP|GP|EC|ZN|MP|NW)",
        4.6,
        (SA_WHITE, SA_YELLOW, GP_SCHEME),
        ("SOUTH AFRICA",),
        "top",
        weight=1.5,
        tags=("sa",),
    ),
    PlateFormat(
        "za-moto",
        "ZA",
        _sa_moto,
        r"[A-Z]{2}\d{6}",
        1.6,
        (SA_WHITE, SA_YELLOW),
        (),
        "",
        weight=0.7,
        tags=("sa", "two-row"),
    ),
    PlateFormat("eu-de", "EU", _eu_de, r"[A-Z]{2,5}\d{1,4}", 4.7, (EU_WHITE,), (), "eu", weight=0.8),
    PlateFormat("eu-fr", "EU", _eu_fr, r"[A-Z]{2}\d{3}[A-Z]{2}", 4.7, (EU_WHITE,), (), "eu", weight=0.6),
    PlateFormat("eu-es", "EU", _eu_es, r"\d{4}[A-Z]{3}", 4.7, (EU_WHITE,), (), "eu", weight=0.5),
    PlateFormat("eu-it", "EU", _eu_it, r"[A-Z]{2}\d{3}[A-Z]{2}", 4.7, (EU_WHITE,), (), "eu", weight=0.5),
    PlateFormat("uk", "UK", _uk, r"[A-Z]{2}\d{2}[A-Z]{3}", 4.7, (UK_FRONT, UK_REAR), (), "", weight=0.8),
    PlateFormat("us", "US", _us, r"[A-Z0-9]{1,7}", 2.0, US_SCHEMES, US_STATES, "top", weight=3.0, tags=("us",)),
    PlateFormat(
        "br-old",
        "BR",
        _br_old,
        r"[A-Z]{3}\d{4}",
        3.08,
        (BR_GREY, BR_GREY, BR_RED),
        BR_CITIES,
        "top",
        glyph_style="br",
        weight=3.0,
    ),
    PlateFormat(
        "br-moto",
        "BR",
        _br_moto,
        r"[A-Z]{3}\d{4}",
        1.2,
        (BR_GREY,),
        BR_CITIES,
        "top",
        glyph_style="br",
        weight=0.5,
        tags=("two-row",),
    ),
    PlateFormat(
        "two-row",
        "XX",
        _two_row_generic,
        r"[A-Z]{2,3}\d{3,4}",
        1.7,
        (WHITE, SA_YELLOW),
        (),
        "",
        weight=0.5,
        tags=("two-row",),
    ),
)
FORMAT_BY_NAME = {f.name: f for f in FORMATS}
SA_FORMATS = tuple(f for f in FORMATS if "sa" in f.tags)


def pick_format(rng: Rng, formats: Sequence[PlateFormat] = FORMATS) -> PlateFormat:
    """A format drawn with its weight."""
    weights = np.array([f.weight for f in formats], dtype=np.float64)
    return formats[int(rng.choice(len(formats), p=weights / weights.sum()))]
