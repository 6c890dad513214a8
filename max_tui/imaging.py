"""Image previews in the terminal, with character cells: each cell is an upper half block ``▀``
whose foreground is one pixel and background the pixel below it, so a 40×16-cell preview shows
40×32 pixels in true colour (Textual reduces colours on terminals that have fewer).

Decoding: Pillow when it is installed (every format); without it, PNG with the small decoder
below (zlib and the five PNG filters; 8-bit grey, grey+alpha, RGB, RGBA and palette images,
not interlaced), so the console needs no image library to preview the most common screenshots.
Decoding runs in a thread (``asyncio.to_thread``): it never blocks the event loop.
"""

from __future__ import annotations

import struct
import zlib
from dataclasses import dataclass
from io import BytesIO

from textual.content import Content

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
MAX_PURE_PIXELS = 2_000_000  # the pure-Python decoder's limit (larger ones need Pillow)
BACKGROUND = (0, 0, 0)


class PreviewUnavailable(Exception):
    """Why this image cannot be previewed here (the agent can still save or open it)."""


@dataclass(frozen=True)
class Pixels:
    width: int
    height: int
    rgb: list[tuple[int, int, int]]  # row by row

    def at(self, x: int, y: int) -> tuple[int, int, int]:
        return self.rgb[y * self.width + x]


def _paeth(a: int, b: int, c: int) -> int:
    p = a + b - c
    pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
    if pa <= pb and pa <= pc:
        return a
    return b if pb <= pc else c


def _unfilter(data: bytes, width: int, height: int, bpp: int) -> list[bytearray]:
    stride = width * bpp
    rows: list[bytearray] = []
    previous = bytearray(stride)
    position = 0
    for _ in range(height):
        kind = data[position]
        row = bytearray(data[position + 1 : position + 1 + stride])
        position += 1 + stride
        if kind == 1:
            for i in range(bpp, stride):
                row[i] = (row[i] + row[i - bpp]) & 0xFF
        elif kind == 2:
            for i in range(stride):
                row[i] = (row[i] + previous[i]) & 0xFF
        elif kind == 3:
            for i in range(stride):
                left = row[i - bpp] if i >= bpp else 0
                row[i] = (row[i] + ((left + previous[i]) >> 1)) & 0xFF
        elif kind == 4:
            for i in range(stride):
                left = row[i - bpp] if i >= bpp else 0
                upper_left = previous[i - bpp] if i >= bpp else 0
                row[i] = (row[i] + _paeth(left, previous[i], upper_left)) & 0xFF
        elif kind != 0:
            raise PreviewUnavailable(f"corrupt PNG (filter {kind})")
        rows.append(row)
        previous = row
    return rows


def decode_png(data: bytes) -> Pixels:
    """RGB pixels of an 8-bit, non-interlaced PNG (alpha blended onto black)."""
    if not data.startswith(PNG_SIGNATURE):
        raise PreviewUnavailable("not a PNG image")
    position, chunks, palette = 8, bytearray(), b""
    width = height = depth = colour = interlace = 0
    while position + 8 <= len(data):
        length, kind = struct.unpack(">I4s", data[position : position + 8])
        body = data[position + 8 : position + 8 + length]
        position += 12 + length
        if kind == b"IHDR":
            width, height, depth, colour, _, _, interlace = struct.unpack(">IIBBBBB", body)
        elif kind == b"PLTE":
            palette = body
        elif kind == b"IDAT":
            chunks += body
        elif kind == b"IEND":
            break
    channels = {0: 1, 2: 3, 3: 1, 4: 2, 6: 4}.get(colour)
    if depth != 8 or interlace or channels is None:
        raise PreviewUnavailable("this PNG needs Pillow to preview (pip install pillow)")
    if width * height > MAX_PURE_PIXELS:
        raise PreviewUnavailable("too large to preview without Pillow (pip install pillow)")
    try:
        raw = zlib.decompress(bytes(chunks))
    except zlib.error as exc:
        raise PreviewUnavailable(f"corrupt PNG ({exc})") from None
    rows = _unfilter(raw, width, height, channels)
    pixels: list[tuple[int, int, int]] = []
    for row in rows:
        for x in range(width):
            value = row[x * channels : (x + 1) * channels]
            if colour == 3:
                index = value[0] * 3
                pixels.append((palette[index], palette[index + 1], palette[index + 2]))
            elif colour in (0, 4):
                alpha = value[1] if colour == 4 else 255
                grey = value[0] * alpha // 255
                pixels.append((grey, grey, grey))
            else:
                alpha = value[3] if colour == 6 else 255
                pixels.append((value[0] * alpha // 255, value[1] * alpha // 255, value[2] * alpha // 255))
    return Pixels(width, height, pixels)


def decode(data: bytes) -> Pixels:
    """Pillow when installed (any format it reads), else the PNG decoder above."""
    try:
        from PIL import Image  # optional: not a dependency of MAX
    except ImportError:
        return decode_png(data)
    try:
        with Image.open(BytesIO(data)) as image:
            image.thumbnail((400, 400))
            rgb = image.convert("RGB")
            return Pixels(rgb.width, rgb.height, list(rgb.getdata()))
    except (OSError, ValueError) as exc:
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
    """A minimal RGB PNG (for tests and the snapshot data: no image library needed)."""

    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))

    raw = b"".join(
        b"\x00" + bytes(value for pixel in rgb[y * width : (y + 1) * width] for value in pixel)
        for y in range(height)
    )
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return PNG_SIGNATURE + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(raw)) + chunk(b"IEND", b"")
