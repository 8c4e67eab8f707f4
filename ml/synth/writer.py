"""Write event rows exactly like the real REES46 files (CSV, gzip CSV) or as Parquet.

CSV rows are assembled without a per-row formatter. Every row is the concatenation of three
pre-formatted pieces:
  A  "2019-11-01 00:00:00 UTC,view,"                      one per (second of the day, type)
  B  "1004237,2053013555631882655,electronics.smartphone,apple,1081.98,"   one per price run
  C  "535871217,c6bd7419-2748-4c56-95b4-8cec9ff8b80d\\n"  one per session
An Arrow binary_view array points at the three pieces of every row and one cast to binary
gathers them into the file body (C++ speed). gzip is written pigz-style: 4 MiB blocks
deflated independently (wherever the day is made), each primed with the previous 32 KiB of
text as dictionary, joined into one standard single-member gzip stream whose CRC-32 is
combined from the blocks'; the bytes depend only on the data, so runs are reproducible.

Parquet: event_time TIMESTAMP WITH TIME ZONE (UTC, microseconds), product_id, category_id,
user_id BIGINT, price DOUBLE, the other columns VARCHAR (nullable category_code, brand).
"""
from __future__ import annotations

import os
import struct
import zlib
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from ml.synth.catalog import Catalog
from ml.synth.events import EVENT_TYPES, Events
from ml.synth.prices import Prices
from ml.synth.timeline import DAY, Timeline

HEADER = (b"event_time,event_type,product_id,category_id,category_code,brand,price,user_id,"
          b"user_session\n")
MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")
HEX = np.frombuffer(b"0123456789abcdef", dtype=np.uint8)
GZIP_BLOCK = 4 << 20
GZIP_WINDOW = 32768  # deflate's window: a block's dictionary is the text before it
MAX_ROWS_PER_CAST = 4_000_000  # binary offsets are int32: keep a cast well under 2 GiB

PARQUET_SCHEMA = pa.schema([
    ("event_time", pa.timestamp("us", tz="UTC")),
    ("event_type", pa.dictionary(pa.int8(), pa.string())),
    ("product_id", pa.int64()),
    ("category_id", pa.int64()),
    ("category_code", pa.dictionary(pa.int32(), pa.string())),
    ("brand", pa.dictionary(pa.int32(), pa.string())),
    ("price", pa.float64()),
    ("user_id", pa.int64()),
    ("user_session", pa.string()),
])


# ---------------------------------------------------------------------------------------
# fixed-width ASCII helpers


def digits(values: np.ndarray, width: int) -> np.ndarray:
    """(n, width) uint8 ASCII of non-negative integers, zero-padded on the left."""
    v = np.asarray(values, dtype=np.int64).copy()
    out = np.empty((len(v), width), dtype=np.uint8)
    for j in range(width - 1, -1, -1):
        out[:, j] = 48 + v % 10
        v //= 10
    return out


def _splitmix64(x: np.ndarray) -> np.ndarray:
    x = x + np.uint64(0x9E3779B97F4A7C15)
    z = (x ^ (x >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
    z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
    return z ^ (z >> np.uint64(31))


def session_uuids(src: np.ndarray, key: int) -> np.ndarray:
    """(n, 36) uint8: a UUID-v4-looking id per session, a pure function of (key, src)."""
    s = np.asarray(src, dtype=np.uint64) * np.uint64(2)
    k = np.uint64(key & 0xFFFFFFFFFFFFFFFF)
    words = np.empty((len(s), 2), dtype=">u8")  # big-endian: bytes in reading order
    words[:, 0] = _splitmix64(s ^ k)
    words[:, 1] = _splitmix64((s + np.uint64(1)) ^ k)
    b = words.view(np.uint8).reshape(len(s), 16)
    nib = np.empty((len(s), 32), dtype=np.uint8)
    nib[:, 0::2] = b >> 4
    nib[:, 1::2] = b & 15
    nib[:, 12] = 4  # version 4
    nib[:, 16] = 8 | (nib[:, 16] & 3)  # RFC 4122 variant
    out = np.full((len(s), 36), ord("-"), dtype=np.uint8)
    out[:, _UUID_COLS] = HEX[nib]
    return out


_UUID_COLS = np.array([c for c in range(36) if c not in (8, 13, 18, 23)])


# ---------------------------------------------------------------------------------------
# CSV body assembly


class _Table:
    """Packed byte strings plus the binary_view template (length, prefix, buffer, offset)."""

    def __init__(self, data: np.ndarray, offsets: np.ndarray, lengths: np.ndarray,
                 buffer_index: int) -> None:
        self.data = data if len(data) >= 4 else np.zeros(4, dtype=np.uint8)
        n = len(offsets)
        t = np.empty((n, 4), dtype=np.int32)
        t[:, 0] = lengths
        if n:
            pref = self.data[offsets[:, None] + np.arange(4)]
            t[:, 1] = np.ascontiguousarray(pref).view(np.int32).ravel()
        t[:, 2] = buffer_index
        t[:, 3] = offsets
        # one 16-byte view descriptor per entry, viewed as complex128 so that gathering
        # descriptors is a plain 16-byte copy (numpy's fast path); bits are not touched
        self.template = t.view(np.complex128).ravel()

    @staticmethod
    def from_arrow(arr: pa.Array, buffer_index: int) -> "_Table":
        """From a non-null string/binary array: its data buffer and offsets."""
        n = len(arr)
        offs = np.frombuffer(arr.buffers()[1], dtype=np.int32, count=arr.offset + n + 1)
        offs = offs[arr.offset:].astype(np.int64)
        data = np.frombuffer(arr.buffers()[2], dtype=np.uint8)
        return _Table(data, offs[:-1], np.diff(offs), buffer_index)

    @staticmethod
    def fixed(rows: np.ndarray, buffer_index: int) -> "_Table":
        n, w = rows.shape
        return _Table(np.ascontiguousarray(rows).ravel(), np.arange(n, dtype=np.int64) * w,
                      np.full(n, w), buffer_index)


def product_prefixes(cat: Catalog) -> pa.Array:
    """Per product "product_id,category_id,category_code,brand," (empty fields for nulls)."""
    codes = pa.array(list(cat.cat_code), pa.string())
    brands = pa.array(list(cat.brand_names), pa.string())
    code = codes.take(pa.array(cat.product_cat))
    brand = brands.take(pa.array(cat.product_brand, mask=cat.product_brand < 0))
    return pc.binary_join_element_wise(
        pa.array(cat.product_id).cast(pa.string()),
        pa.array(cat.cat_id[cat.product_cat]).cast(pa.string()), code, brand, pa.scalar(""),
        ",", null_handling="replace", null_replacement="")


_CENTS = pa.array([f"{i:02d}" for i in range(100)], pa.string())


def price_fields(prefix: pa.Array, cents: np.ndarray) -> pa.Array:
    """prefix + price with two decimals (as the real files: 1081.98, 33.20, 0.00) + ","."""
    cents = np.asarray(cents, dtype=np.int64)
    return pc.binary_join_element_wise(
        prefix, pa.array(cents // 100).cast(pa.string()), pa.scalar("."),
        _CENTS.take(pa.array(cents % 100)), pa.scalar(","), "")


class _SessionFields:
    """What the user_id and user_session fields need: set by `for_sessions` once the
    sessions exist (the rest of a formatter can be built before)."""

    def for_sessions(self, user_id: np.ndarray, sess_user: np.ndarray, uuid_src: np.ndarray,
                     uuid_key: int):
        self.user_id, self.sess_user = user_id, sess_user
        self.uuid_src, self.uuid_key = uuid_src, uuid_key
        return self


class CsvFormatter(_SessionFields):
    """Builds CSV bodies of event chunks (see module docstring)."""

    def __init__(self, cat: Catalog, prices: Prices) -> None:
        self.cat = cat
        self.prefix = product_prefixes(cat)
        self._day_block = None
        runs = price_fields(self.prefix.take(pa.array(prices.run_product)), prices.run_shown)
        self.runs = _Table.from_arrow(runs, 1)

    def day_table(self, day: int, label: str) -> _Table:
        """A-pieces of one day: entry 3 * second + type. Built once; for each day only the
        date bytes are rewritten (the view descriptors stay valid within a year, whose
        first four bytes are the descriptors' prefix)."""
        if self._day_block is None or self._day_year != label[:4]:
            block, offsets, lengths, self._date_cols = self._day_template()
            self._write_date(block, label)
            self._day_block = block
            self._day_year = label[:4]
            self._day_table = _Table(block.ravel(), offsets, lengths, 0)
        else:
            self._write_date(self._day_block, label)
        return self._day_table

    def _write_date(self, block: np.ndarray, label: str) -> None:
        date = np.frombuffer(label.encode(), dtype=np.uint8)
        block[:, self._date_cols] = np.tile(date, len(self._date_cols) // len(date))

    @staticmethod
    def _day_template() -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        sec = np.arange(DAY)
        hms = np.empty((DAY, 8), dtype=np.uint8)
        hms[:, 0:2] = digits(sec // 3600, 2)
        hms[:, 2] = ord(":")
        hms[:, 3:5] = digits(sec // 60 % 60, 2)
        hms[:, 5] = ord(":")
        hms[:, 6:8] = digits(sec % 60, 2)
        tail = np.frombuffer(b" UTC,", dtype=np.uint8)
        pieces = [np.frombuffer(t.encode() + b",", dtype=np.uint8) for t in EVENT_TYPES]
        lens = np.array([24 + len(p) for p in pieces])
        stride = int(lens.sum())
        block = np.empty((DAY, stride), dtype=np.uint8)
        date_cols = []
        off = 0
        for p, n in zip(pieces, lens):
            date_cols.extend(range(off, off + 10))
            block[:, off + 10] = ord(" ")
            block[:, off + 11:off + 19] = hms
            block[:, off + 19:off + 24] = tail
            block[:, off + 24:off + n] = p
            off += int(n)
        offsets = (np.arange(DAY)[:, None] * stride
                   + np.concatenate([[0], np.cumsum(lens)[:-1]])[None, :]).ravel()
        return block, offsets, np.tile(lens, DAY), np.array(date_cols)

    def body(self, ev: Events, day: int, a_table: _Table) -> list[pa.Buffer]:
        """CSV bytes of `ev` (rows of one day, in order) as a list of buffers."""
        out = []
        for lo in range(0, len(ev), MAX_ROWS_PER_CAST):
            part = ev.take(np.arange(lo, min(lo + MAX_ROWS_PER_CAST, len(ev))))
            out.append(self._body(part, day, a_table))
        return out

    def _body(self, ev: Events, day: int, a_table: _Table) -> pa.Buffer:
        n = len(ev)
        sess, inv = dense_codes(ev.sess)
        c_rows = np.empty((len(sess), 47), dtype=np.uint8)
        c_rows[:, :9] = digits(self.user_id[self.sess_user[sess]], 9)
        c_rows[:, 9] = ord(",")
        c_rows[:, 10:46] = session_uuids(self.uuid_src[sess], self.uuid_key)
        c_rows[:, 46] = ord("\n")
        c_table = _Table.fixed(c_rows, 3)
        custom = np.nonzero(ev.run < 0)[0]
        x_table = _Table.from_arrow(
            price_fields(self.prefix.take(pa.array(ev.prod[custom])), ev.cents[custom]), 2)
        views = np.empty((n, 3), dtype=np.complex128)
        views[:, 0] = a_table.template[(ev.t - day * DAY) * 3 + ev.etype]
        views[:, 1] = self.runs.template[np.maximum(ev.run, 0)]
        if len(custom):
            views[custom, 1] = x_table.template
        views[:, 2] = c_table.template[inv]
        arr = pa.Array.from_buffers(
            pa.binary_view(), 3 * n,
            [None, pa.py_buffer(views), pa.py_buffer(a_table.data), pa.py_buffer(self.runs.data),
             pa.py_buffer(x_table.data), pa.py_buffer(c_table.data)])
        flat = arr.cast(pa.binary())
        offs = np.frombuffer(flat.buffers()[1], dtype=np.int32, count=3 * n + 1)
        return flat.buffers()[2].slice(int(offs[0]), int(offs[-1] - offs[0]))


def dense_codes(values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(sorted distinct values, index of each value among them) for integers spanning a
    modest range; like np.unique(return_inverse=True) without sorting."""
    if len(values) == 0:
        return values.copy(), np.empty(0, dtype=np.int64)
    lo = int(values.min())
    span = int(values.max()) - lo + 1
    mark = np.zeros(span, dtype=bool)
    mark[values - lo] = True
    code = np.cumsum(mark) - 1
    return np.nonzero(mark)[0] + lo, code[values - lo]


# ---------------------------------------------------------------------------------------
# gzip


GZIP_HEADER = b"\x1f\x8b\x08\x00\x00\x00\x00\x00\x00\xff"  # mtime 0, OS unknown


def deflate_block(data, zdict: bytes, level: int) -> bytes:
    """Raw deflate of one block, primed with `zdict` and ending on a byte boundary, so that
    blocks deflated independently join into one stream."""
    if zdict:
        c = zlib.compressobj(level, zlib.DEFLATED, -15, 8, zlib.Z_DEFAULT_STRATEGY, zdict)
    else:
        c = zlib.compressobj(level, zlib.DEFLATED, -15, 8, zlib.Z_DEFAULT_STRATEGY)
    return c.compress(data) + c.flush(zlib.Z_SYNC_FLUSH)


def _gf2_times(mat: list[int], vec: int) -> int:
    out = 0
    i = 0
    while vec:
        if vec & 1:
            out ^= mat[i]
        vec >>= 1
        i += 1
    return out


def _gf2_square(mat: list[int]) -> list[int]:
    return [_gf2_times(mat, m) for m in mat]


def _zero_byte_operators(bits: int = 48) -> list[list[int]]:
    """GF(2) matrices that advance a CRC-32 over 2**k zero bytes, k = 0..bits-1."""
    op = [0xEDB88320] + [1 << i for i in range(31)]  # one zero bit
    for _ in range(3):
        op = _gf2_square(op)
    ops = [op]
    for _ in range(bits - 1):
        ops.append(_gf2_square(ops[-1]))
    return ops


_ZERO_BYTE_OPS: list[list[int]] = []


def crc32_combine(crc1: int, crc2: int, len2: int) -> int:
    """CRC-32 of A + B from crc(A), crc(B) and len(B) (zlib's crc32_combine)."""
    if not _ZERO_BYTE_OPS:
        _ZERO_BYTE_OPS.extend(_zero_byte_operators())
    k = 0
    while len2:
        if len2 & 1:
            crc1 = _gf2_times(_ZERO_BYTE_OPS[k], crc1)
        len2 >>= 1
        k += 1
    return crc1 ^ crc2


def _last_bytes(buffers: list, n: int) -> bytes:
    """The last `n` bytes of the concatenation of `buffers` (all of it if shorter)."""
    parts, need = [], n
    for buf in reversed(buffers):
        mv = memoryview(buf)
        parts.append(bytes(mv[max(0, len(mv) - need):]))
        need -= len(parts[-1])
        if need <= 0:
            break
    return b"".join(reversed(parts))


class Chunk:
    """The bytes one day adds to its file: CSV text, or the deflate blocks of that text
    with its CRC-32 and length (gzip)."""

    def __init__(self, rows: int, pieces: list, crc: int = 0, text_len: int = 0) -> None:
        self.rows = rows
        self.pieces = pieces
        self.nbytes = sum(len(memoryview(p)) for p in pieces)
        self.crc = crc
        self.text_len = text_len

    def without_bytes(self) -> "Chunk":
        """What placing the chunk needs (sizes and CRC), cheap to send."""
        meta = Chunk(self.rows, [], self.crc, self.text_len)
        meta.nbytes = self.nbytes
        return meta


class GzipText:
    """One day's CSV text cut into 4 MiB blocks (from the start of each buffer), each to be
    deflated with the preceding 32 KiB of the file's text as dictionary. Blocks preceded by
    32 KiB of this day's own text are deflated by `deflate_own`; the first one needs the end
    of the previous day (`window`), which may still be in the making elsewhere."""

    def __init__(self, text: list, level: int) -> None:
        self.level = level
        self.blocks = [memoryview(buf)[lo:lo + GZIP_BLOCK] for buf in text
                       for lo in range(0, len(memoryview(buf)), GZIP_BLOCK)]
        self.tail = _last_bytes(text, GZIP_WINDOW)  # extends the window of the next day
        self.text_len = sum(len(b) for b in self.blocks)
        self.crc = 0
        self._out: list[bytes | None] = [None] * len(self.blocks)

    def _dictionaries(self):
        """(block index, own text before it if under 32 KiB else None, its last 32 KiB)."""
        seen, tail = 0, b""
        for i, b in enumerate(self.blocks):
            yield i, (tail if seen < GZIP_WINDOW else None), tail
            seen += len(b)
            tail = (tail + bytes(b[-GZIP_WINDOW:]))[-GZIP_WINDOW:]

    def deflate_own(self) -> None:
        for b in self.blocks:
            self.crc = zlib.crc32(b, self.crc)
        for i, short, tail in self._dictionaries():
            if short is None:
                self._out[i] = deflate_block(self.blocks[i], tail, self.level)

    def deflate_rest(self, window: bytes) -> None:
        """Deflate the first blocks, given the last 32 KiB of the file before this day."""
        for i, short, _ in self._dictionaries():
            if short is not None:
                self._out[i] = deflate_block(self.blocks[i], (window + short)[-GZIP_WINDOW:],
                                             self.level)

    def chunk(self, rows: int) -> Chunk:
        return Chunk(rows, self._out, self.crc, self.text_len)


# ---------------------------------------------------------------------------------------
# files


def file_stem(tl: Timeline, day: int, split: str) -> str:
    """`2019-Nov` for split=month, `2019-11-05` for split=day (the real files' naming)."""
    if split == "day":
        return tl.day_label(day)
    y, m = tl.month_of_day(day)
    return f"{y}-{MONTHS[m - 1]}"


class CsvFile:
    """A csv or csv.gz file put together from day chunks laid one after the other.

    `place` hands out each chunk's offset in day order; the chunk itself may be written by
    any process (`write_at`), so days can be made in parallel. gzip: a single member whose
    header and deflated CSV header are written at creation, the final block and trailer
    (CRC-32 combined over the chunks) by `finish`. The bytes depend only on the text."""

    def __init__(self, path: Path, gz: bool, level: int = 1) -> None:
        self.path, self.gz, self.level = path, gz, level
        self.crc, self.size = zlib.crc32(HEADER), len(HEADER)
        self.window = HEADER  # the last 32 KiB of text: the next day's dictionary
        head = GZIP_HEADER + deflate_block(HEADER, b"", level) if gz else HEADER
        with open(path, "wb") as f:
            f.write(head)
        self.end = len(head)

    def extend_window(self, tail: bytes) -> None:
        """Append the end of a day's text (its last 32 KiB, or all of it)."""
        self.window = (self.window + tail)[-GZIP_WINDOW:]

    def place(self, chunk: Chunk) -> int:
        offset = self.end
        self.end += chunk.nbytes
        if self.gz:
            self.crc = crc32_combine(self.crc, chunk.crc, chunk.text_len)
            self.size += chunk.text_len
        return offset

    def finish(self) -> None:
        if not self.gz:
            return
        final = zlib.compressobj(self.level, zlib.DEFLATED, -15).flush(zlib.Z_FINISH)
        write_at(self.path, self.end, [final, struct.pack("<II", self.crc & 0xFFFFFFFF,
                                                          self.size & 0xFFFFFFFF)])


def write_at(path: Path | int, offset: int, pieces: list) -> None:
    """Write `pieces` one after the other from `offset` (a path, or an open descriptor)."""
    fd = os.open(path, os.O_WRONLY) if not isinstance(path, int) else path
    try:
        for p in pieces:
            mv = memoryview(p).cast("B")
            while len(mv):
                n = os.pwrite(fd, mv, offset)
                offset += n
                mv = mv[n:]
    finally:
        if fd is not path:
            os.close(fd)


def open_parquet(path: Path) -> pq.ParquetWriter:
    return pq.ParquetWriter(path, PARQUET_SCHEMA, compression="zstd", store_schema=False)


def write_row_groups(writer: pq.ParquetWriter, table: pa.Table) -> None:
    if table.num_rows:
        writer.write_table(table, row_group_size=1 << 20)


class ArrowFormatter(_SessionFields):
    """Arrow tables of event chunks, in the Parquet schema."""

    def __init__(self, cat: Catalog, start_epoch: int) -> None:
        self.cat = cat
        self.start_epoch = start_epoch
        # several category_ids share a code: the dictionary must hold each code once, or
        # the Parquet writer's output bytes vary from run to run
        codes = sorted({c for c in cat.cat_code if c is not None})
        where = {c: i for i, c in enumerate(codes)}
        self._code_idx = np.array([-1 if c is None else where[c] for c in cat.cat_code],
                                  dtype=np.int32)
        self._codes = pa.array(codes, pa.string())

    def table(self, ev: Events) -> pa.Table:
        cat = self.cat
        sess, inv = dense_codes(ev.sess)
        uu = session_uuids(self.uuid_src[sess], self.uuid_key)[inv]
        n = len(ev)
        sess_arr = pa.StringArray.from_buffers(
            n, pa.py_buffer(np.arange(0, 36 * (n + 1), 36, dtype=np.int32)),
            pa.py_buffer(np.ascontiguousarray(uu)))
        code = self._code_idx[cat.product_cat[ev.prod]]
        brand = cat.product_brand[ev.prod]
        cols = [
            pa.array((ev.t + self.start_epoch) * 1_000_000, pa.timestamp("us", tz="UTC")),
            pa.DictionaryArray.from_arrays(pa.array(ev.etype, pa.int8()),
                                           pa.array(EVENT_TYPES, pa.string())),
            pa.array(cat.product_id[ev.prod], pa.int64()),
            pa.array(cat.cat_id[cat.product_cat[ev.prod]], pa.int64()),
            pa.DictionaryArray.from_arrays(pa.array(code, pa.int32(), mask=code < 0),
                                           self._codes),
            pa.DictionaryArray.from_arrays(pa.array(brand, pa.int32(), mask=brand < 0),
                                           pa.array(cat.brand_names, pa.string())),
            pa.array(ev.cents / 100.0, pa.float64()),
            pa.array(self.user_id[self.sess_user[ev.sess]], pa.int64()),
            sess_arr,
        ]
        return pa.Table.from_arrays(cols, schema=PARQUET_SCHEMA)
