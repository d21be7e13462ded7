"""A ShapesCoT scene: 2–4 coloured shapes on a 3×3 grid, sampled from a seeded RNG and drawn
without anti-aliasing.

By default each 48-pixel image is exactly three 16-pixel patches wide (one patch per cell), and
small shapes are two thirds as wide as large ones, so a tiny encoder can read every cell from one
patch. The four silhouettes differ in a third or more of their pixels even when small: a tiny
Mllama never learnt to tell a disc, a filled square and a diamond apart (docs/research/stage0.md).
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from typing import TYPE_CHECKING

from PIL import Image, ImageDraw

if TYPE_CHECKING:
    from .config import ShapesCoTConfig

#: A hollow ring, a filled square, a triangle and a thin cross: pairwise different in 36–114 of
#: their pixels at one 16-pixel patch per cell.
SHAPES: tuple[str, ...] = ("ring", "square", "triangle", "cross")
#: Saturated, well separated colours so each one survives as a distinct patch embedding.
COLOURS: dict[str, tuple[int, int, int]] = {
    "red": (220, 30, 30),
    "green": (30, 160, 60),
    "blue": (40, 80, 220),
    "yellow": (235, 200, 20),
    "purple": (140, 50, 180),
}
SIZES: tuple[str, ...] = ("small", "large")
ROWS: tuple[str, ...] = ("top", "middle", "bottom")
COLUMNS: tuple[str, ...] = ("left", "centre", "right")
BACKGROUND: tuple[int, int, int] = (255, 255, 255)
GRID = 3
#: Shape radius as a fraction of a grid cell: large shapes fill most of it, small ones two
#: thirds as wide, so at one 16-pixel patch per cell every shape still spans several pixels.
LARGE_RADIUS = 0.45
SMALL_RADIUS = 0.3
MIN_IMAGE_SIZE = 32


def max_jitter_px(image_size: int) -> int:
    """Largest jitter that keeps a large shape inside its cell, so shapes never touch."""
    cell = image_size / GRID
    return int(cell / 2 - LARGE_RADIUS * cell)


@dataclass(frozen=True)
class SceneObject:
    """One shape in one grid cell; ``dx``/``dy`` are drawing jitter only, never described."""

    shape: str
    colour: str
    size: str
    row: int
    column: int
    dx: int = 0
    dy: int = 0

    @property
    def name(self) -> str:
        """Colour and shape, unique within a scene, so it names the object in answers."""
        return f"{self.colour} {self.shape}"

    @property
    def description(self) -> str:
        return f"{self.size} {self.colour} {self.shape}"

    @property
    def position(self) -> str:
        return position_name(self.row, self.column)


@dataclass(frozen=True)
class Scene:
    """The objects of one image in canonical order: top to bottom, then left to right."""

    objects: tuple[SceneObject, ...]


def position_name(row: int, column: int) -> str:
    """'top left' … 'bottom right'; the middle cell is just 'centre'."""
    if (row, column) == (1, 1):
        return "centre"
    return f"{ROWS[row]} {COLUMNS[column]}"


def object_centre(obj: SceneObject, *, image_size: int) -> tuple[int, int]:
    """Pixel (x, y) at the centre of the object (drawn over except in a ring's hole)."""
    return (
        (2 * obj.column + 1) * image_size // (2 * GRID) + obj.dx,
        (2 * obj.row + 1) * image_size // (2 * GRID) + obj.dy,
    )


def render_scene(scene: Scene, *, image_size: int) -> Image.Image:
    """Draw the scene without anti-aliasing so every shape pixel has its exact colour."""
    image = Image.new("RGB", (image_size, image_size), BACKGROUND)
    draw = ImageDraw.Draw(image)
    cell = image_size / GRID
    for obj in scene.objects:
        x, y = object_centre(obj, image_size=image_size)
        r = (LARGE_RADIUS if obj.size == "large" else SMALL_RADIUS) * cell
        fill = COLOURS[obj.colour]
        if obj.shape == "ring":
            hole = 0.55 * r
            draw.ellipse((x - r, y - r, x + r, y + r), fill=fill)
            draw.ellipse((x - hole, y - hole, x + hole, y + hole), fill=BACKGROUND)
        elif obj.shape == "square":
            side = 0.9 * r
            draw.rectangle((x - side, y - side, x + side, y + side), fill=fill)
        elif obj.shape == "triangle":
            draw.polygon([(x, y - r), (x + r, y + 0.8 * r), (x - r, y + 0.8 * r)], fill=fill)
        else:
            arm = 0.3 * r
            draw.rectangle((x - r, y - arm, x + r, y + arm), fill=fill)
            draw.rectangle((x - arm, y - r, x + arm, y + r), fill=fill)
    return image


def sample_scene(rng: random.Random, *, config: ShapesCoTConfig) -> Scene:
    """Distinct cells and distinct (colour, shape) pairs, so every object has a unique name."""
    n = rng.randint(config.min_objects, config.max_objects)
    cells = sorted(rng.sample(range(GRID * GRID), n))
    kinds = rng.sample([(c, s) for c in COLOURS for s in SHAPES], n)
    objects = []
    for cell, (colour, shape) in zip(cells, kinds, strict=True):
        size = rng.choice(SIZES)
        dx = rng.randint(-config.jitter_px, config.jitter_px)
        dy = rng.randint(-config.jitter_px, config.jitter_px)
        objects.append(SceneObject(shape, colour, size, cell // GRID, cell % GRID, dx, dy))
    return Scene(tuple(objects))
