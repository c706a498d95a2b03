"""Fonts from Debian packages (:data:`PACKAGES`: DejaVu, Liberation, FreeFont, URW base35 and plate-like condensed,
DIN and square faces).

Only fonts found on disk are used; ``tools/train`` installs the packages. Without any, the renderer falls back to the
project's own stroke font (:mod:`anpr.synth.glyphs`), so the generator always works.
"""

from __future__ import annotations

import functools
from pathlib import Path

FONT_DIRS = (Path("/usr/share/fonts"), Path("/usr/local/share/fonts"))
# Upright sans and mono faces that look like plate lettering; serif and italic faces are left out.
WANTED = (
    "DejaVuSans-Bold.ttf",
    "DejaVuSansCondensed-Bold.ttf",
    "DejaVuSansMono-Bold.ttf",
    "DejaVuSans.ttf",
    "DejaVuSansCondensed.ttf",
    "LiberationSans-Bold.ttf",
    "LiberationMono-Bold.ttf",
    "LiberationSans-Regular.ttf",
    "FreeSansBold.ttf",
    "FreeMonoBold.ttf",
    "FreeSans.ttf",
    "NimbusSans-Bold.otf",
    "NimbusSansNarrow-Bold.otf",
    "NimbusSansNarrow-Regular.otf",
    "NimbusMonoPS-Bold.otf",
    "URWGothic-Demi.otf",
    "URWGothic-Book.otf",
    "NimbusSans-Regular.otf",
    # Plate-like faces with the glyph shapes generic fonts lack (added 2026-12-06 for the US and EU misreads):
    # condensed gothics as on most US plates (open 4, narrow W and M), DIN as on German plates, and other
    # condensed and square faces.
    "BebasNeue-Bold.otf",
    "BebasNeue-Regular.otf",
    "routed-gothic-narrow.ttf",
    "routed-gothic.ttf",
    "OSP-DIN.ttf",
    "RobotoCondensed-Bold.ttf",
    "RobotoCondensed-Regular.ttf",
    "OpenSans-CondBold.ttf",
    "ClearSans-Bold.ttf",
    "Play-Bold.ttf",
    "B612Mono-Bold.otf",
    "LeagueSpartan-Bold.otf",
)
# Faces of car makers' and models' badges, which a detector must not take for plates: italic, oblique, serif and
# script lettering as well as the upright plate faces.
BADGE_ONLY = (
    "DejaVuSans-BoldOblique.ttf",
    "DejaVuSerif-BoldItalic.ttf",
    "LiberationSans-BoldItalic.ttf",
    "LiberationSerif-Bold.ttf",
    "FreeSansBoldOblique.ttf",
    "FreeSerifBoldItalic.ttf",
    "NimbusSans-BoldItalic.otf",
    "NimbusSansNarrow-BoldOblique.otf",
    "NimbusRoman-BoldItalic.otf",
    "URWGothic-DemiOblique.otf",
    "URWBookman-DemiItalic.otf",
    "P052-BoldItalic.otf",
    "C059-Bold.otf",
    "Z003-MediumItalic.otf",
)
PACKAGES = (
    "fonts-dejavu-core",
    "fonts-liberation2",
    "fonts-freefont-ttf",
    "fonts-urw-base35",
    "fonts-bebas-neue",
    "fonts-routed-gothic",
    "fonts-opendin",
    "fonts-roboto",
    "fonts-open-sans",
    "fonts-clear-sans",
    "fonts-play",
    "fonts-b612",
    "fonts-league-spartan",
)


@functools.cache
def _installed(names: tuple[str, ...]) -> tuple[Path, ...]:
    found: dict[str, Path] = {}
    for root in FONT_DIRS:
        if not root.is_dir():
            continue
        for path in root.rglob("*"):
            if path.name in names and path.name not in found:
                found[path.name] = path
    return tuple(found[name] for name in names if name in found)


def missing_fonts() -> tuple[str, ...]:
    """The wanted plate fonts that are not installed. Synthetic data drawn without them is not the recipe's: the
    held-out figures differ (2026-12-07, shipped models, 100 held-out 1080p scenes: 98.4 % of legible plates read
    with DejaVu alone, 97.5 % with every font), so the training commands warn and their reports list them."""
    installed = {path.name for path in available_fonts()}
    return tuple(name for name in WANTED if name not in installed)


def available_fonts() -> tuple[Path, ...]:
    """Paths of the wanted plate fonts that are installed, in the order of :data:`WANTED`."""
    return _installed(WANTED)


def badge_fonts() -> tuple[Path, ...]:
    """Paths of the installed badge faces (:data:`BADGE_ONLY`, then the plate faces), in a fixed order."""
    return _installed(BADGE_ONLY + WANTED)
