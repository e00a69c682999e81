"""Text data files before parsing: compression by extension, the delimiter sniffed from a sample,
runs of spaces made into one delimiter, and data rows mapped back to physical lines (for messages).
"""

from __future__ import annotations

import csv
import io
import re
from pathlib import Path

from nnctl.errors import DataError

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
    except DataError:
        raise
    except (OSError, EOFError, ValueError) as exc:
        raise DataError(f"{path}: cannot read it as {compression_of(path) or 'text'} ({exc})") from None
    except Exception as exc:  # zlib.error, lzma.LZMAError, zipfile.BadZipFile: a damaged archive
        raise DataError(f"{path}: damaged {compression_of(path)} file ({exc})") from None
    if len(data) == SNIFF_BYTES and b"\n" in data:
        data = data[: data.rindex(b"\n") + 1]  # whole lines only
    return data


_LINE_END = re.compile(rb"\r\n|\r|\n")  # the line ends Arrow knows (str.splitlines knows more: \f, \x1c, ...)


def physical_lines(sample: bytes) -> list[str]:
    """The lines of a sample, split where Arrow splits them."""
    text = sample[3:] if sample.startswith(b"\xef\xbb\xbf") else sample
    return [ln.decode("utf-8", errors="replace") for ln in _LINE_END.split(text)]


def leading_blank_lines(sample: bytes) -> int:
    """Physical lines before the first one that is not blank."""
    n = 0
    for line in physical_lines(sample):
        if line.strip():
            break
        n += 1
    return n


def offset_after_lines(sample: bytes, n: int) -> int | None:
    """The byte offset just past the first `n` lines of the sample (None if it holds fewer)."""
    if n == 0:
        return 0
    for i, m in enumerate(_LINE_END.finditer(sample), 1):
        if i == n:
            return m.end()
    return None


def decompression_errors() -> tuple:
    """The exceptions a damaged gzip, bz2, xz or zip file raises while it is read."""
    import lzma
    import zipfile
    import zlib

    return (EOFError, zlib.error, lzma.LZMAError, zipfile.BadZipFile)


def text_lines(sample: bytes, path: Path) -> list[str]:
    if b"\x00" in sample[:4096]:
        raise DataError(f"{path}: a binary file, not text; data files are CSV-like text (.csv .tsv .txt, "
                        f"optionally compressed) or .parquet")
    return [ln for ln in physical_lines(sample) if ln.strip()][:50]


_FIELD = re.compile(r'"(?:[^"]|"")*"|[^ \t\r\n]+')


def whitespace_fields(line: str) -> list[str]:
    """The fields of a line whose delimiter is runs of spaces (a quoted field may hold spaces)."""
    return [f[1:-1].replace('""', '"') if f.startswith('"') and f.endswith('"') and len(f) > 1 else f
            for f in _FIELD.findall(line)]


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
    if fits([len(whitespace_fields(ln)) for ln in lines]):
        return WHITESPACE
    return None


def source(path: Path, delimiter: str):
    """What Arrow reads: the path itself (Arrow decompresses gzip and bz2), or a file object."""
    kind = compression_of(path)
    if delimiter == WHITESPACE:
        try:
            with open_decompressed(path) as f:
                data = f.read()
        except decompression_errors() as exc:
            raise DataError(f"{path}: cannot read ({exc}); is the file damaged?") from None
        data = data[3:] if data.startswith(b"\xef\xbb\xbf") else data
        if b'"' in data:  # quoted values may hold spaces: split each line into its fields
            field = re.compile(rb'"(?:[^"]|"")*"|[^ \t\r\n]+')
            return io.BytesIO(b"".join(UNIT_SEP.encode().join(field.findall(line)) + b"\n"
                                       for line in data.splitlines()))
        data = re.sub(rb"(?m)^[ \t]+|[ \t]+(?=\r?$)", b"", data)
        return io.BytesIO(re.sub(rb"[ \t]+", UNIT_SEP.encode(), data))
    if kind in (None, "gzip", "bz2"):
        import pyarrow as pa

        return pa.input_stream(str(path), compression="detect")
    return open_decompressed(path)


# ------------------------------------------------------------------------------------ line numbers
def records(path: Path, delimiter: str, header: bool, spaces_are_rows: bool = False):
    """(physical line, fields) of every data record, as Arrow saw them (blank lines skipped; with
    `spaces_are_rows`, a line of only spaces is a record, as it is to Arrow's parser)."""
    with open_decompressed(path) as raw:
        text = io.TextIOWrapper(raw, encoding="utf-8-sig", errors="replace", newline="")
        skip = header  # the header is the first line that is not blank
        if delimiter == WHITESPACE:
            for ln, line in enumerate(text, 1):
                if line.strip():
                    if skip:
                        skip = False
                        continue
                    yield ln, whitespace_fields(line)
            return
        reader = csv.reader(text, delimiter=delimiter)
        start = reader.line_num
        for row in reader:
            first_line, start = start + 1, reader.line_num
            if not row or (all(not c.strip() for c in row) and not (spaces_are_rows and any(row))):
                continue
            if skip:
                skip = False
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
        for ln, row in records(path, delimiter, header, spaces_are_rows=True):
            if len(row) != width:
                return ln
    except (OSError, csv.Error, EOFError):
        pass
    return "?"
