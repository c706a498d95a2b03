"""Vehicle passes rendered for the real recognize service: frame n shows the plates in view at frame n."""

from __future__ import annotations

from dataclasses import dataclass, field

from testkit.scenes import PLATE_SIZE, Box, render_scene


@dataclass
class PassScript:
    """Each pass moves a rendered plate across the view, left to right; the recogniser reads it for real."""

    plates_by_frame: dict[int, list[tuple[str, Box]]] = field(default_factory=dict)

    def add_pass(self, text: str, first: int, last: int, y: int = 200, misread: dict[int, str] | None = None) -> None:
        """A plate seen in frames first..last, moving right by 30 px a frame; ``misread`` renders other text there.

        ``y`` up to 296 keeps the plate in the top half of the frame, 360 or more in the bottom half: plates in
        different halves are separate detections.
        """
        width, height = PLATE_SIZE
        for n in range(first, last + 1):
            shown = (misread or {}).get(n, text)
            self.plates_by_frame.setdefault(n, []).append((shown, (40 + 30 * (n - first), y, width, height)))

    def image(self, n: int) -> bytes:
        """Frame n as JPEG (plain grey, which has no plate, where nothing is in view)."""
        return render_scene(self.plates_by_frame.get(n, []))
