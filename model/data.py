"""The picture to repaint: loading a file, or drawing the built-in one, plus the PNG encoder.

The built-in picture is drawn here from formulas (a swirly night sky with stars, a moon, a
cypress and hills, after the lab's "Starry Night") so that the trainer runs out of the box
without shipping anybody's image.
"""

from __future__ import annotations

import io

import numpy as np
from PIL import Image, UnidentifiedImageError


class PictureError(ValueError):
    """The picture cannot be used; the message is one line, fit for the user."""


def load_picture(path: str, size: int) -> np.ndarray:
    """Read any picture Pillow understands and resize it to size x size RGB (uint8).

    Pillow's default resampling (bicubic with antialiasing) is used, so the target is a
    faithful downscale rather than an aliased one.
    """
    try:
        with Image.open(path) as image:
            image = image.convert("RGB")
            if image.size != (size, size):
                image = image.resize((size, size), Image.Resampling.BICUBIC)
            return np.asarray(image, dtype=np.uint8)
    except FileNotFoundError:
        raise PictureError(f"picture not found: {path}") from None
    except IsADirectoryError:
        raise PictureError(f"picture is a directory: {path}") from None
    except UnidentifiedImageError:
        raise PictureError(f"not a picture Pillow can read: {path}") from None
    except (OSError, ValueError, Image.DecompressionBombError) as exc:
        raise PictureError(f"cannot read picture {path}: {exc}") from None


def draw_default_picture(size: int) -> np.ndarray:
    """Draw the built-in night scene at size x size as RGB uint8.

    Every pixel is a function of its centre's normalised coordinates, so the picture is the
    same scene at every --size (and needs no resampling).
    """
    centres = (np.arange(size, dtype=np.float64) + 0.5) / size
    v, u = np.meshgrid(centres, centres, indexing="ij")  # v: down, u: right, both in (0, 1)

    # Sky: deep blue at the top, lighter towards the horizon, with a long horizontal wave.
    sky = _mix(np.array([0.05, 0.12, 0.38]), np.array([0.25, 0.42, 0.70]), v[..., None])
    wave = np.sin(9 * u + 4 * np.sin(5 * v + 1.3) + 30 * v)
    sky = _mix(sky, np.array([0.55, 0.70, 0.90]), (0.35 * np.clip(wave, 0, 1) ** 3)[..., None])

    # Swirls: logarithmic spirals with a Gaussian falloff around a few centres.
    for cx, cy, radius, turns in ((0.45, 0.35, 0.14, 7.0), (0.68, 0.28, 0.10, -6.0)):
        dx, dy = u - cx, v - cy
        r = np.hypot(dx, dy) + 1e-6
        spiral = 0.5 + 0.5 * np.cos(3 * np.arctan2(dy, dx) + turns * np.log(r))
        weight = np.exp(-((r / radius) ** 2)) * spiral
        sky = _mix(sky, np.array([0.80, 0.88, 0.95]), (0.8 * weight)[..., None])

    # Stars: yellow cores with rippling halos.
    stars = ((0.12, 0.12), (0.30, 0.08), (0.55, 0.12), (0.80, 0.45), (0.38, 0.55), (0.62, 0.52),
             (0.90, 0.15), (0.20, 0.40))
    for sx, sy in stars:
        r = np.hypot(u - sx, v - sy)
        halo = np.exp(-r / 0.035) * (0.6 + 0.4 * np.cos(r * 140))
        sky = _mix(sky, np.array([0.98, 0.92, 0.45]), np.clip(halo, 0, 1)[..., None])

    # Moon: a crescent in the top right corner.
    moon = (np.hypot(u - 0.86, v - 0.12) < 0.075) & (np.hypot(u - 0.89, v - 0.10) > 0.065)
    picture = np.where(moon[..., None], np.array([1.0, 0.80, 0.25]), sky)

    # Hills with a village: dark blue-green ground and a few lit windows.
    horizon = 0.72 + 0.04 * np.sin(7 * u + 0.5) + 0.02 * np.sin(23 * u)
    ground = _mix(np.array([0.10, 0.20, 0.30]), np.array([0.05, 0.10, 0.15]),
                  np.clip((v - horizon) / 0.28, 0, 1)[..., None])
    windows = ((np.sin(80 * u) > 0.7) & (np.sin(90 * v) > 0.8) & (v > horizon + 0.06)
               & (u > 0.35) & (u < 0.85))
    ground = np.where(windows[..., None], np.array([0.95, 0.85, 0.35]), ground)
    picture = np.where((v > horizon)[..., None], ground, picture)

    # Cypress: a dark flame rising from the ground on the left, with wavy edges.
    half_width = 0.09 * np.clip((v - 0.15) / 0.85, 0, 1) ** 0.7 * (1 + 0.25 * np.sin(40 * v))
    cypress = np.abs(u - 0.17 - 0.02 * np.sin(12 * v)) < half_width
    bark = 0.5 + 0.5 * np.sin(60 * v + 20 * u)
    tree = _mix(np.array([0.08, 0.10, 0.05]), np.array([0.20, 0.22, 0.10]), bark[..., None])
    picture = np.where(cypress[..., None], tree, picture)

    return np.round(np.clip(picture, 0, 1) * 255).astype(np.uint8)


def encode_png(pixels: np.ndarray) -> bytes:
    """PNG bytes of an RGB uint8 array."""
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, format="PNG")
    return buffer.getvalue()


def _mix(a: np.ndarray, b: np.ndarray, t: np.ndarray) -> np.ndarray:
    """Linear blend from a (t=0) to b (t=1)."""
    return a + (b - a) * t
