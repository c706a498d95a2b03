"""Fonts from Debian packages (fonts-dejavu-core, fonts-liberation2, fonts-freefont-ttf, fonts-urw-base35).

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
    "LiberationSansNarrow-Bold.ttf",
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
PACKAGES = ("fonts-dejavu-core", "fonts-liberation2", "fonts-freefont-ttf", "fonts-urw-base35")


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


def available_fonts() -> tuple[Path, ...]:
    """Paths of the wanted plate fonts that are installed, in the order of :data:`WANTED`."""
    return _installed(WANTED)


def badge_fonts() -> tuple[Path, ...]:
    """Paths of the installed badge faces (:data:`BADGE_ONLY`, then the plate faces), in a fixed order."""
    return _installed(BADGE_ONLY + WANTED)
