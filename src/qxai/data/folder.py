"""``imagefolder:PATH``: a data set the user brings, one sub-folder per class.

The layout is ``PATH/<class name>/<image files>`` (files in nested folders count too), e.g. the NIH
malaria ``cell_images/Parasitized|Uninfected``. Class names are the sub-folder names in sorted
order; hidden folders and files whose extension is not an image extension are ignored.

The stated transform, applied to every image:

1. RGBA, LA and palette images with transparency are composited on a white background.
2. Colour: converted to RGB (3 channels); converted to L (1 channel) instead when every readable
   image is grayscale (modes ``1``, ``L``, ``LA``, ``I``, ``I;16``, ``F``) or when ``channels=1``.
   16-bit images are scaled from 0–65535 (a 32-bit ``I`` image too when its maximum exceeds 255,
   else from 0–255), float images clipped to 0–1.
3. Size: resized to ``image_size × image_size`` with PIL's bilinear filter (antialiased when
   shrinking); the aspect ratio is not kept.
4. Scaled to float32 in ``[0, 1]``.

Unreadable files are skipped with a warning that names them; their names are also kept in the
returned data set's ``skipped`` attribute.
"""

from __future__ import annotations

import os
import warnings
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from qxai.data.base import ImageDataset, check_classes
from qxai.errors import QxaiError

IMAGE_EXTENSIONS = frozenset({".png", ".jpg", ".jpeg", ".bmp", ".gif", ".tif", ".tiff", ".webp"})
_GRAY_MODES = frozenset({"1", "L", "LA", "I", "I;16", "I;16B", "I;16L", "I;16N", "F"})


def load_image_folder(
    path: str | os.PathLike[str],
    image_size: int = 64,
    channels: int | None = None,
    max_per_class: int | None = None,
) -> ImageDataset:
    """Load ``path`` (one sub-folder per class) with the transform stated in the module docstring.

    Returns an :class:`ImageDataset` with ``images`` ``(N, C, image_size, image_size)`` float32 in
    ``[0, 1]`` (``C`` is 1 or 3), ``labels`` ``(N,)`` (index into the sorted class names) and
    ``skipped``: the unreadable files. ``max_per_class`` keeps the first files of each class in
    sorted path order.

    >>> import tempfile, pathlib; from PIL import Image
    >>> root = pathlib.Path(tempfile.mkdtemp())
    >>> for c in ("a", "b"):
    ...     (root / c).mkdir(); Image.new("RGB", (10, 7), "red").save(root / c / "x.png")
    >>> ds = load_image_folder(root, image_size=8)
    >>> ds.image_shape, ds.class_names, ds.labels.tolist()
    ((3, 8, 8), ['a', 'b'], [0, 1])
    """
    root = Path(path).expanduser()
    if channels not in (None, 1, 3):
        raise QxaiError(f"channels must be 1 or 3, got {channels}; pass 1 (grayscale) or 3 (RGB)")
    if image_size < 1:
        raise QxaiError(f"image_size must be positive, got {image_size}; pass e.g. 64")
    files, labels, class_names = list_image_files(root, max_per_class)
    # Without ``channels`` the colour mode depends on every image: read as RGB (a grayscale image
    # becomes three equal channels) and keep one channel at the end if all were grayscale.
    pixels, kept, skipped, all_gray = _read_all(files, image_size, gray=channels == 1)
    if skipped:
        shown = ", ".join(str(p.relative_to(root)) for p in skipped[:10])
        more = f" and {len(skipped) - 10} more" if len(skipped) > 10 else ""
        warnings.warn(
            f"skipped {len(skipped)} unreadable image file(s) in {root}: {shown}{more}", stacklevel=2
        )
    if not kept:
        raise QxaiError(f"no readable images in {root} ({len(skipped)} unreadable); check the files' format")
    if channels is None and all_gray:
        pixels = pixels[..., :1]
    data = ImageDataset(
        # contiguous N×C×H×W, as a streamed batch is: a channels-last tensor picks other conv kernels,
        # whose rounding differs, so the in-memory and streamed maps would differ in the last bits
        torch.from_numpy(pixels).permute(0, 3, 1, 2).contiguous().float().div_(255.0),
        torch.tensor([labels[i] for i in kept], dtype=torch.long),
        class_names,
        name=f"imagefolder:{path}",
    )
    data.skipped = [str(p) for p in skipped]  # type: ignore[attr-defined]
    check_classes(data, f"image folder {root}")
    return data


def list_image_files(root: Path, max_per_class: int | None) -> tuple[list[Path], list[int], list[str]]:
    """Image files, their class index and the class names, after checking the layout."""
    if not root.exists():
        raise QxaiError(f"image folder {root} does not exist; pass imagefolder:PATH with an existing folder")
    if not root.is_dir():
        raise QxaiError(
            f"{root} is a file, not a folder; pass the folder that holds one sub-folder per class"
        )
    entries = [p for p in root.iterdir() if not p.name.startswith(".")]
    if not entries:
        raise QxaiError(f"image folder {root} is empty; put one sub-folder of images per class in it")
    class_dirs = sorted((p for p in entries if p.is_dir()), key=lambda p: p.name)
    if not class_dirs:
        raise QxaiError(f"{root} has no class sub-folders; put the images in one sub-folder per class")
    if max_per_class is not None and max_per_class < 1:
        raise QxaiError(f"max_per_class must be at least 1, got {max_per_class}")
    files: list[Path] = []
    labels: list[int] = []
    for k, folder in enumerate(class_dirs):
        found = sorted(
            p
            for p in folder.rglob("*")
            if p.suffix.lower() in IMAGE_EXTENSIONS and p.is_file() and not p.name.startswith(".")
        )
        found = found[:max_per_class] if max_per_class else found
        files += found
        labels += [k] * len(found)
    if not files:
        names = ", ".join(p.name for p in class_dirs)
        raise QxaiError(f"no image files in the class folders of {root} ({names}); expected *.png, *.jpg, …")
    return files, labels, [p.name for p in class_dirs]


def _read_all(files: list[Path], size: int, gray: bool) -> tuple[np.ndarray, list[int], list[Path], bool]:
    """Decode and transform every file: ``(N, S, S, C)`` uint8 pixels, the positions that were
    readable, the unreadable files, and whether every readable image was grayscale."""
    pixels = np.empty((len(files), size, size, 1 if gray else 3), dtype=np.uint8)
    kept: list[int] = []
    skipped: list[Path] = []
    all_gray = True
    for i, file in enumerate(files):
        try:
            with Image.open(file) as img:
                img.load()  # decode now, so that a truncated file fails here and not later
                pixels[len(kept)] = transform_image(img, size, gray)
                all_gray &= img.mode in _GRAY_MODES
            kept.append(i)
        except (OSError, ValueError, SyntaxError, Image.DecompressionBombError):
            skipped.append(file)
    return pixels[: len(kept)], kept, skipped, all_gray


def transform_image(img: Image.Image, size: int, gray: bool) -> np.ndarray:
    """One PIL image → ``(size, size, 1 or 3)`` uint8 (the module's stated transform, steps 1–3)."""
    if img.mode == "F" or img.mode.startswith("I"):
        # High bit depth: scale to [0, 1] ourselves; PIL's convert("L") would clip at 255.
        values = np.asarray(img, dtype=np.float32)
        if img.mode == "F":
            values = np.clip(values, 0, 1)
        else:  # "I;16*" is 16-bit; a 32-bit "I" image is taken as 16-bit when it exceeds 255
            values = values / (65535.0 if img.mode.startswith("I;16") or values.max() > 255 else 255.0)
        img = Image.fromarray(np.rint(values * 255).astype(np.uint8))
    if img.mode in ("RGBA", "LA", "PA") or (img.mode == "P" and "transparency" in img.info):
        white = Image.new("RGBA", img.size, (255, 255, 255, 255))
        img = Image.alpha_composite(white, img.convert("RGBA"))
    img = img.convert("L" if gray else "RGB").resize((size, size), Image.BILINEAR)
    out = np.asarray(img, dtype=np.uint8)
    return out[:, :, None] if gray else out
