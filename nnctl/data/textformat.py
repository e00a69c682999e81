"""Text data files before parsing: compression by extension, the delimiter sniffed from a sample,
runs of spaces made into one delimiter, and data rows mapped back to physical lines (for messages).
"""

from __future__ import annotations

import csv
import io
import re
from pathlib import Path

from nnctl.errors import DataError

DELIMITERS = (",", ";", "\t", "|")  # sniffed in this order of preference; then runs of spaces
WHITESPACE = " "  # data.delimiter ' ': runs of spaces and tabs
SNIFF_BYTES = 1 << 16
UNIT_SEP = "\x1f"  # what runs of spaces become before Arrow parses the text


def compression_of(path: Path) -> str | None:
    suffix = path.suffix.lower()
    return {".gz": "gzip", ".bz2": "bz2", ".xz": "xz", ".zip": "zip"}.get(suffix)


def is_parquet(path: Path) -> bool:
    return path.suffix.lower() in (".parquet", ".pq")


def open_decompressed(path: Path):
    """A binary file object over the (decompressed) text of `path`."""
    kind = compression_of(path)
    try:
        if kind is None:
            return open(path, "rb")
        if kind == "gzip":
            import gzip

            return gzip.open(path, "rb")
        if kind == "bz2":
            import bz2

            return bz2.open(path, "rb")
        if kind == "xz":
            import lzma

            return lzma.open(path, "rb")
        import zipfile

        z = zipfile.ZipFile(path)
        members = [m for m in z.infolist() if not m.is_dir() and not m.filename.startswith("__MACOSX/")]
        if len(members) != 1:
            names = ", ".join(m.filename for m in members[:5]) or "none"
            raise DataError(f"{path}: a .zip data file must hold exactly one file; it holds {len(members)} ({names})")
        return z.open(members[0])
    except OSError as exc:
        raise DataError(f"{path}: cannot read ({exc.strerror or exc})") from None


def sample(path: Path) -> bytes:
    """The first SNIFF_BYTES of the decompressed text, cut at a line end."""
    try:
        with open_decompressed(path) as f:
            data = f.read(SNIFF_BYTES)
    except (OSError, EOFError, ValueError) as exc:
        raise DataError(f"{path}: cannot read it as {compression_of(path) or 'text'} ({exc})") from None
    except Exception as exc:  # zlib.error, lzma.LZMAError, zipfile.BadZipFile: a damaged archive
        raise DataError(f"{path}: damaged {compression_of(path)} file ({exc})") from None
    if len(data) == SNIFF_BYTES and b"\n" in data:
        data = data[: data.rindex(b"\n") + 1]  # whole lines only
    return data


def text_lines(sample: bytes, path: Path) -> list[str]:
    if b"\x00" in sample[:4096]:
        raise DataError(f"{path}: a binary file, not text; data files are CSV-like text (.csv .tsv .txt, "
                        f"optionally compressed) or .parquet")
    text = sample.decode("utf-8-sig", errors="replace")
    return [ln for ln in text.splitlines() if ln.strip()][:50]


def sniff_delimiter(lines: list[str], decimal: str = ".") -> str | None:
    """The delimiter that splits the first line into >= 2 fields and (nearly) every other sampled
    line into as many, or None. One ragged line in the sample is left for the reader to report.

    Preference among several: ';' (European files, whose decimal commas also split evenly on ','),
    tab, '|', ',', then runs of spaces."""
    if not lines:
        return None

    def fits(counts: list[int]) -> bool:
        return counts[0] >= 2 and sum(c == counts[0] for c in counts) >= max(len(counts) - 1, 0.9 * len(counts))

    for d in (";", "\t", "|", ","):
        if d == "," and decimal == ",":
            continue
        if fits([len(row) for row in csv.reader(lines, delimiter=d)]):
            return d
    if fits([len(ln.split()) for ln in lines]):
        return WHITESPACE
    return None


def source(path: Path, delimiter: str):
    """What Arrow reads: the path itself (Arrow decompresses gzip and bz2), or a file object."""
    kind = compression_of(path)
    if delimiter == WHITESPACE:
        with open_decompressed(path) as f:
            data = f.read()
        data = data[3:] if data.startswith(b"\xef\xbb\xbf") else data
        data = re.sub(rb"(?m)^[ \t]+|[ \t]+(?=\r?$)", b"", data)
        return io.BytesIO(re.sub(rb"[ \t]+", UNIT_SEP.encode(), data))
    if kind in (None, "gzip", "bz2"):
        import pyarrow as pa

        return pa.input_stream(str(path), compression="detect")
    return open_decompressed(path)


# ------------------------------------------------------------------------------------ line numbers
def records(path: Path, delimiter: str, header: bool):
    """(physical line, fields) of every data record, as Arrow saw them (blank lines skipped)."""
    with open_decompressed(path) as raw:
        text = io.TextIOWrapper(raw, encoding="utf-8-sig", errors="replace", newline="")
        if delimiter == WHITESPACE:
            for ln, line in enumerate(text, 1):
                if line.strip() and not (header and ln == 1):
                    yield ln, line.split()
            return
        reader = csv.reader(text, delimiter=delimiter)
        start = reader.line_num
        for row in reader:
            first_line, start = start + 1, reader.line_num
            if header and first_line == 1:
                continue
            if not row or (len(row) == 1 and not row[0].strip()):
                continue
            yield first_line, row


def row_lines(path: Path, delimiter: str, header: bool, wanted: set[int]) -> dict[int, int]:
    out, last = {}, max(wanted)
    try:
        for i, (ln, _) in enumerate(records(path, delimiter, header)):
            if i in wanted:
                out[i] = ln
            if i >= last:
                break
    except (OSError, csv.Error, EOFError):
        pass
    return out


def first_ragged_line(path: Path, delimiter: str, width: int, header: bool) -> int | str:
    try:
        for ln, row in records(path, delimiter, header):
            if len(row) != width:
                return ln
    except (OSError, csv.Error, EOFError):
        pass
    return "?"
