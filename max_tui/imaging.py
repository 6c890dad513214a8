"""Image previews in the terminal, with character cells: each cell is an upper half block ``▀``
whose foreground is one pixel and background the pixel below it, so a 40×16-cell preview shows
40×32 pixels in true colour (Textual reduces colours on terminals that have fewer).

Decoding is Pillow's (JPEG, the photos WhatsApp delivers, PNG, WebP stickers, GIF…), imported
only when a preview is asked for, so starting the console or ``max --help`` does not pay for it.
The image is scaled down while decoding (JPEG's draft mode) and as a thumbnail: a preview never
needs more than ``THUMBNAIL`` pixels a side. Decoding runs in a thread (``asyncio.to_thread``):
it never blocks the event loop.
"""

from __future__ import annotations

import struct
import zlib
from dataclasses import dataclass
from io import BytesIO

from textual.content import Content

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
THUMBNAIL = 400  # pixels a side: far more than a preview's cells can show
MAX_PIXELS = 50_000_000  # a larger image is refused (a decompression bomb), not decoded
BACKGROUND = (0, 0, 0)  # what transparency is blended onto


class PreviewUnavailable(Exception):
    """Why this image cannot be previewed here (the agent can still save or open it)."""


@dataclass(frozen=True)
class Pixels:
    width: int
    height: int
    rgb: list[tuple[int, int, int]]  # row by row

    def at(self, x: int, y: int) -> tuple[int, int, int]:
        return self.rgb[y * self.width + x]


def decode(data: bytes) -> Pixels:
    """RGB pixels of an image in any format Pillow reads, at most ``THUMBNAIL`` a side
    (transparency blended onto black). Raises ``PreviewUnavailable`` with the reason."""
    from PIL import Image, UnidentifiedImageError  # lazily: only when a preview is shown

    try:
        with Image.open(BytesIO(data)) as opened:
            if opened.width * opened.height > MAX_PIXELS:
                raise PreviewUnavailable(f"too large to preview ({opened.width}×{opened.height} pixels)")
            opened.draft("RGB", (THUMBNAIL, THUMBNAIL))  # JPEG decodes at 1/2, 1/4 or 1/8 size
            opened.thumbnail((THUMBNAIL, THUMBNAIL))
            image: Image.Image = opened
            if image.mode in ("RGBA", "LA", "PA") or "transparency" in image.info:
                rgba = image.convert("RGBA")
                image = Image.new("RGB", image.size, BACKGROUND)
                image.paste(rgba, mask=rgba.getchannel("A"))
            rgb = image.convert("RGB")
            raw = rgb.tobytes()  # R, G, B, R, G, B… row by row
            return Pixels(rgb.width, rgb.height, list(zip(raw[0::3], raw[1::3], raw[2::3], strict=True)))
    except UnidentifiedImageError:
        raise PreviewUnavailable("not an image format the console can read") from None
    except (OSError, ValueError, Image.DecompressionBombError) as exc:
        raise PreviewUnavailable(f"cannot read this image ({exc})") from None


def fit(width: int, height: int, max_columns: int, max_rows: int) -> tuple[int, int]:
    """Cells (columns, rows) that keep the aspect ratio; a cell is 1 pixel wide and 2 tall."""
    scale = min(max_columns / width, (max_rows * 2) / height, 1.0)
    return max(int(width * scale), 1), max(int(height * scale / 2), 1)


def _hex(rgb: tuple[int, int, int]) -> str:
    return "#{:02x}{:02x}{:02x}".format(*rgb)


def half_blocks(pixels: Pixels, max_columns: int, max_rows: int) -> Content:
    """The image in ``▀`` cells (nearest-neighbour sampling), at most ``max_columns`` × ``max_rows``."""
    columns, rows = fit(pixels.width, pixels.height, max_columns, max_rows)
    lines: list[Content] = []
    for row in range(rows):
        cells: list[tuple[str, str]] = []
        for column in range(columns):
            x = min(column * pixels.width // columns, pixels.width - 1)
            top_y = min((2 * row) * pixels.height // (2 * rows), pixels.height - 1)
            bottom_y = min((2 * row + 1) * pixels.height // (2 * rows), pixels.height - 1)
            cells.append(("▀", f"{_hex(pixels.at(x, top_y))} on {_hex(pixels.at(x, bottom_y))}"))
        lines.append(Content.assemble(*cells))
    return Content("\n").join(lines)


def encode_png(width: int, height: int, rgb: list[tuple[int, int, int]]) -> bytes:
    """A minimal RGB PNG, byte for byte the same on every machine (tests and snapshot data)."""

    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))

    raw = b"".join(
        b"\x00" + bytes(value for pixel in rgb[y * width : (y + 1) * width] for value in pixel)
        for y in range(height)
    )
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return PNG_SIGNATURE + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(raw)) + chunk(b"IEND", b"")
