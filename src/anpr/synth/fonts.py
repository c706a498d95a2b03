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
PACKAGES = ("fonts-dejavu-core", "fonts-liberation2", "fonts-freefont-ttf", "fonts-urw-base35")


@functools.cache
def available_fonts() -> tuple[Path, ...]:
    """Paths of the wanted fonts that are installed, in the order of :data:`WANTED`."""
    found: dict[str, Path] = {}
    for root in FONT_DIRS:
        if not root.is_dir():
            continue
        for path in root.rglob("*"):
            if path.name in WANTED and path.name not in found:
                found[path.name] = path
    return tuple(found[name] for name in WANTED if name in found)
