"""Camera and weather effects on uint8 RGB images: blur, noise, JPEG, low light, video softness, infrared, glare,
shadows, dirt.

Every function takes the image and a numpy ``Generator`` and returns a new uint8 image, so a seed fixes the result.
"""

from __future__ import annotations

import cv2
import numpy as np

from anpr.synth.formats import Rng


def motion_blur(img: np.ndarray, rng: Rng, max_len: int = 9) -> np.ndarray:
    """Linear motion blur in a random direction."""
    n = int(rng.integers(3, max(4, max_len)))
    kernel = np.zeros((n, n), np.float32)
    kernel[n // 2, :] = 1.0
    rot = cv2.getRotationMatrix2D((n / 2 - 0.5, n / 2 - 0.5), float(rng.uniform(0, 180)), 1.0)
    rotated = np.asarray(cv2.warpAffine(kernel, rot, (n, n)), np.float32)
    rotated = rotated / max(float(rotated.sum()), 1e-6)
    return np.asarray(cv2.filter2D(img, -1, rotated), np.uint8)


def defocus(img: np.ndarray, rng: Rng, max_sigma: float = 2.0) -> np.ndarray:
    """Gaussian defocus."""
    return np.asarray(cv2.GaussianBlur(img, (0, 0), float(rng.uniform(0.4, max_sigma))), np.uint8)


def noise(img: np.ndarray, rng: Rng, max_sigma: float = 14.0) -> np.ndarray:
    """Additive Gaussian sensor noise."""
    n = rng.standard_normal(img.shape, dtype=np.float32) * np.float32(rng.uniform(2, max_sigma))
    return np.clip(img.astype(np.float32) + n, 0, 255).astype(np.uint8)


def jpeg(img: np.ndarray, rng: Rng, lo: int = 25, hi: int = 90) -> np.ndarray:
    """JPEG compression artefacts."""
    ok, buf = cv2.imencode(".jpg", img, [cv2.IMWRITE_JPEG_QUALITY, int(rng.integers(lo, hi))])
    decoded = cv2.imdecode(buf, cv2.IMREAD_UNCHANGED) if ok else None
    return img if decoded is None else np.asarray(decoded, np.uint8)


def low_light(img: np.ndarray, rng: Rng) -> np.ndarray:
    """Darker, lower-contrast frame with a gamma curve."""
    f = img.astype(np.float32) / 255.0
    f = np.power(f, float(rng.uniform(1.1, 1.7))) * float(rng.uniform(0.45, 0.85)) + 0.03
    return np.asarray(np.clip(f * 255, 0, 255), np.uint8)


def resample(img: np.ndarray, rng: Rng) -> np.ndarray:
    """Detail lost to a lower-resolution sensor or a video stream scaled up: down by 1.3-2.5x and back."""
    h, w = img.shape[:2]
    f = float(rng.uniform(1.3, 2.5))
    small = cv2.resize(img, (max(2, int(w / f)), max(2, int(h / f))), interpolation=cv2.INTER_AREA)
    return np.asarray(cv2.resize(small, (w, h), interpolation=cv2.INTER_LINEAR), np.uint8)


def infrared(img: np.ndarray, rng: Rng) -> np.ndarray:
    """Infrared-like greyscale: one channel, strong contrast (retro-reflective plates glow)."""
    grey = cv2.cvtColor(img, cv2.COLOR_RGB2GRAY).astype(np.float32)
    grey = (grey - grey.mean()) * float(rng.uniform(1.0, 1.6)) + grey.mean() + float(rng.uniform(-20, 30))
    g = np.clip(grey, 0, 255).astype(np.uint8)
    return np.stack([g, g, g], axis=-1)


def glare(img: np.ndarray, rng: Rng) -> np.ndarray:
    """A bright soft spot, as from headlights or the sun."""
    h, w = img.shape[:2]
    centre = (int(rng.integers(0, w)), int(rng.integers(0, h)))
    axes = (int(rng.integers(max(2, w // 10), max(3, w // 2))), int(rng.integers(max(2, h // 10), max(3, h // 2))))
    angle = float(rng.uniform(0, 180))
    # The spot is soft (blurred by half its smaller axis): drawn and blurred at a quarter of the size, then scaled
    # up, it looks the same for a sixteenth of the blur's cost (the blur was most of a scene's rendering time).
    f = 4 if min(h, w) >= 64 else 1
    small = np.zeros((max(1, h // f), max(1, w // f)), np.float32)
    cv2.ellipse(
        small, (centre[0] // f, centre[1] // f), (max(1, axes[0] // f), max(1, axes[1] // f)), angle, 0, 360, 1.0, -1
    )
    small = cv2.GaussianBlur(small, (0, 0), max(1.0, min(axes) / 2 / f))
    mask = cv2.resize(small, (w, h), interpolation=cv2.INTER_LINEAR) * float(rng.uniform(0.3, 0.9))
    out = img.astype(np.float32) * (1 - mask[:, :, None]) + 255 * mask[:, :, None]
    return np.asarray(np.clip(out, 0, 255), np.uint8)


def shadow(img: np.ndarray, rng: Rng) -> np.ndarray:
    """A hard-edged darker polygon crossing the image."""
    h, w = img.shape[:2]
    pts = np.stack([rng.integers(-w // 2, w + w // 2, 4), rng.integers(-h // 2, h + h // 2, 4)], axis=1)
    mask = np.zeros((h, w), np.float32)
    cv2.fillPoly(mask, [pts.astype(np.int32)], 1.0)
    mask = cv2.GaussianBlur(mask, (0, 0), 1.5) * float(rng.uniform(0.25, 0.6))
    return np.asarray(np.clip(img.astype(np.float32) * (1 - mask[:, :, None]), 0, 255), np.uint8)


def dirt(img: np.ndarray, rng: Rng) -> np.ndarray:
    """Brownish spots and smears."""
    h, w = img.shape[:2]
    out = img.copy()
    for _ in range(int(rng.integers(3, 25))):
        colour = (int(rng.integers(60, 130)), int(rng.integers(50, 100)), int(rng.integers(30, 70)))
        r = int(rng.integers(1, max(2, min(h, w) // 12)))
        cv2.circle(out, (int(rng.integers(0, w)), int(rng.integers(0, h))), r, colour, -1, cv2.LINE_AA)
    return np.asarray(cv2.addWeighted(img, 0.6, out, 0.4, 0), np.uint8)


def degrade(img: np.ndarray, rng: Rng, strength: float = 1.0, detail: float = 40.0) -> np.ndarray:
    """A random chain of the effects above; ``strength`` scales how many are applied.

    ``detail`` is the height in pixels of the smallest thing that must stay legible (a plate's characters): blur
    lengths are bounded by it.
    """
    p = 0.3 * strength
    if rng.random() < p:
        img = shadow(img, rng)
    if rng.random() < p * 0.7:
        img = dirt(img, rng)
    if rng.random() < p * 0.6:
        img = glare(img, rng)
    if rng.random() < p:
        img = low_light(img, rng)
        if rng.random() < 0.5:  # dim video: little light and little detail come together
            img = resample(img, rng)
    elif rng.random() < p * 0.5:
        img = resample(img, rng)
    if rng.random() < p * 0.5:
        img = infrared(img, rng)
    if rng.random() < p:
        img = motion_blur(img, rng, max(3, int(detail * 0.2)))
    elif rng.random() < p:
        img = defocus(img, rng, max(0.5, detail * 0.05))
    if rng.random() < p * 1.5:
        img = noise(img, rng)
    if rng.random() < p * 1.5:
        img = jpeg(img, rng)
    return img
