"""Images of the pairs: the checks of data preparation (each distinct image once, in parallel)
and the lazy loaders that training and evaluation read them through."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Mapping
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pandas as pd
from PIL import Image

#: How thoroughly to check: ``decode`` reads every pixel, ``open`` reads the header only,
#: ``exists`` only looks for the file.
IMAGE_CHECKS = ("decode", "open", "exists")

#: Image loaders keyed by the pairs' ``image`` paths (a Kedro ``PartitionedDataset``'s load).
ImageLoaders = Mapping[str, Callable[[], Image.Image]]


def require_image_root(image_root: str | os.PathLike) -> Path:
    root = Path(image_root)
    if not root.is_dir():
        raise FileNotFoundError(
            f"Image root not found: '{root}' (parameter data_prep.image_root). "
            "Point it at the folder the JSONL 'image' paths are relative to."
        )
    return root


def check_images(
    *, image_root: str | os.PathLike, images: Iterable[str], check: str = "decode", workers: int = 8
) -> dict[str, tuple[str, str]]:
    """Return ``{relative path: (reason, detail)}`` for every image that is unusable.

    Reasons are ``missing_image`` and ``unreadable_image``; usable images are absent.
    """
    if check not in IMAGE_CHECKS:
        raise ValueError(f"data_prep.image_check must be one of {IMAGE_CHECKS}, got '{check}'")
    root = require_image_root(image_root)
    distinct = sorted(set(images))

    def problem(relative: str) -> tuple[str, str] | None:
        path = root / relative
        if not path.is_file():
            return ("missing_image", f"no file at {path}")
        if check == "exists":
            return None
        try:
            with Image.open(path) as image:
                if check == "decode":
                    image.load()
        except (OSError, SyntaxError, ValueError, Image.DecompressionBombError) as error:
            return ("unreadable_image", f"{path}: {error}"[:300])
        return None

    with ThreadPoolExecutor(max_workers=workers) as pool:
        results = pool.map(problem, distinct)
    return {relative: found for relative, found in zip(distinct, results, strict=True) if found}


def require_images(*, pairs: pd.DataFrame, images: ImageLoaders) -> None:
    """Fail before any model work, naming one image that the image dataset does not hold."""
    missing = sorted(set(pairs["image"]) - set(images))
    if missing:
        raise KeyError(
            f"{len(missing)} images of the pairs are not in the image dataset, "
            f"e.g. '{missing[0]}'; is the image dataset's path the data_prep image root?"
        )
