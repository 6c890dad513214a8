"""Small but genuine files for the demo's customers to send: a PNG photo, an Ogg Opus voice note
(silence) and a one-page PDF invoice. Made here, byte by byte, so the demo needs no assets and
every file opens in an ordinary viewer or player."""

from __future__ import annotations

import struct
import zlib


def png(width: int = 96, height: int = 64) -> bytes:
    """An RGB image: a parcel label (a brown box with a white label and a dark bar code)."""
    rows = []
    for y in range(height):
        row = bytearray([0])  # filter type 0 for each scanline
        for x in range(width):
            colour = (166, 124, 82)  # cardboard
            if 20 <= x < 76 and 14 <= y < 50:
                colour = (250, 250, 245)  # the label
                if 26 <= x < 70 and 30 <= y < 44 and (x // 2) % 3 != 0:
                    colour = (30, 30, 30)  # bars
            row.extend(colour)
        rows.append(bytes(row))
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + _chunk(b"IHDR", header)
        + _chunk(b"IDAT", zlib.compress(b"".join(rows), 9))
        + _chunk(b"IEND", b"")
    )


def _chunk(kind: bytes, data: bytes) -> bytes:
    return (
        struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)
    )


# Ogg Opus ---------------------------------------------------------------------------------------
def _ogg_crc_table() -> list[int]:
    table = []
    for i in range(256):
        value = i << 24
        for _ in range(8):
            value = ((value << 1) ^ 0x04C11DB7) if value & 0x80000000 else value << 1
        table.append(value & 0xFFFFFFFF)
    return table


_OGG_CRC = _ogg_crc_table()


def _ogg_crc(data: bytes) -> int:
    crc = 0
    for byte in data:
        crc = ((crc << 8) & 0xFFFFFFFF) ^ _OGG_CRC[((crc >> 24) & 0xFF) ^ byte]
    return crc


def _ogg_page(packets: list[bytes], granule: int, serial: int, sequence: int, flags: int) -> bytes:
    lacing = bytearray()
    for packet in packets:
        lacing.extend([255] * (len(packet) // 255))
        lacing.append(len(packet) % 255)
    header = struct.pack("<4sBBqIIIB", b"OggS", 0, flags, granule, serial, sequence, 0, len(lacing))
    page = bytearray(header + bytes(lacing) + b"".join(packets))
    struct.pack_into("<I", page, 22, _ogg_crc(bytes(page)))
    return bytes(page)


def voice_note(seconds: float = 3.0) -> bytes:
    """An Ogg Opus file of ``seconds`` of silence, as WhatsApp voice notes are (``audio/ogg;
    codecs=opus``). Each 20 ms packet is a TOC byte with an empty frame, which decoders play
    as silence (RFC 6716 §3.2.1)."""
    serial, pre_skip, frames = 0x4D4158, 312, max(1, round(seconds / 0.02))
    head = b"OpusHead" + struct.pack("<BBHIhB", 1, 1, pre_skip, 48000, 0, 0)
    vendor = b"MAX demo"
    tags = b"OpusTags" + struct.pack("<I", len(vendor)) + vendor + struct.pack("<I", 0)
    pages = [_ogg_page([head], 0, serial, 0, 0x02), _ogg_page([tags], 0, serial, 1, 0)]
    audio = [b"\xf8"] * frames  # config 31 (CELT fullband, 20 ms), mono, one frame of 0 bytes
    pages.append(_ogg_page(audio, pre_skip + frames * 960, serial, 2, 0x04))
    return b"".join(pages)


# PDF --------------------------------------------------------------------------------------------
def invoice_pdf(lines: list[str]) -> bytes:
    """A one-page PDF with ``lines`` of text (ASCII), with a correct cross-reference table."""

    def escape(text: str) -> str:
        return text.replace("\\", "\\\\").replace("(", "\\(").replace(")", "\\)")

    text = "BT /F1 12 Tf 72 760 Td 16 TL " + " ".join(f"({escape(line)}) '" for line in lines) + " ET"
    stream = text.encode("latin-1", "replace")
    objects = [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
        b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Contents 4 0 R "
        b"/Resources << /Font << /F1 5 0 R >> >> >>",
        b"<< /Length " + str(len(stream)).encode() + b" >>\nstream\n" + stream + b"\nendstream",
        b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>",
    ]
    out = bytearray(b"%PDF-1.4\n")
    offsets = []
    for number, body in enumerate(objects, start=1):
        offsets.append(len(out))
        out += f"{number} 0 obj\n".encode() + body + b"\nendobj\n"
    xref = len(out)
    out += f"xref\n0 {len(objects) + 1}\n0000000000 65535 f \n".encode()
    out += b"".join(f"{offset:010d} 00000 n \n".encode() for offset in offsets)
    out += f"trailer\n<< /Size {len(objects) + 1} /Root 1 0 R >>\nstartxref\n{xref}\n%%EOF\n".encode()
    return bytes(out)
