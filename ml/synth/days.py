"""Days to files: materialise, format, compress and write each day of the window, in this
process or in forked worker processes that share the skeleton copy-on-write.

Days are independent but for one thing: sessions that run past midnight (some for more
than a day) have rows that belong to later days. Each day is materialised from its own
random stream; its rows past midnight are handed to the days they fall on (the *carry*).
A day's rows are its carry followed by its own rows, stably sorted by time: rows with equal
times stay in the order of the day that made them, then the order they were made in. The
order, and so every byte, is the same whatever the number of workers.

A file that holds several days (split=month) is put together from day chunks laid one
after the other: the parent hands out each chunk's offset in day order and the worker that
made the chunk writes it there. gzip blocks are primed with the previous 32 KiB of text, so
the first block of a day waits for the end of the day before (the parent relays it).
Parquet row groups of such a file are written by the parent, in day order.
"""
from __future__ import annotations

import multiprocessing as mp
import os
import queue
import shutil
import tempfile
import threading
import traceback
from collections import Counter, deque
from concurrent.futures import Future, ThreadPoolExecutor
from multiprocessing.connection import Connection, wait

import numpy as np
import pyarrow as pa

from ml.synth.events import PURCHASE, Events, materialize_day
from ml.synth.skeleton import stable_order
from ml.synth.timeline import DAY
from ml.synth.writer import (ArrowFormatter, Chunk, CsvFile, CsvFormatter, GzipText,
                             file_stem, open_parquet, write_at, write_row_groups)

PARQUET_BACKLOG = 2  # day tables queued for the parent's parquet writer (memory)


class Totals:
    """Exact counts of what was written, accumulated day by day (and summed over workers)."""

    def __init__(self, n_users: int, days: int) -> None:
        self.rows = 0
        self.by_type = np.zeros(3, dtype=np.int64)
        self.dup_rows = 0
        self.dup_by_type = np.zeros(3, dtype=np.int64)
        self.purchases_dedup = 0
        self.revenue_cents = 0
        self.price_zero_rows = 0
        self.custom_price_rows = 0
        self.user_rows = np.zeros(n_users, dtype=np.int64)
        self.user_first = np.full(n_users, np.iinfo(np.int64).max, dtype=np.int64)
        self.user_purchases = np.zeros(n_users, dtype=np.int64)
        self.day_purchases = np.zeros(days, dtype=np.int64)
        self.day_rows = np.zeros(days, dtype=np.int64)
        self.sessions = 0
        self.gap_sessions = 0
        self.long_sessions = 0
        self.truncated_rows = 0

    def add_rows(self, ev: Events, day: int, sess_user: np.ndarray) -> None:
        self.rows += len(ev)
        self.day_rows[day] += len(ev)
        self.by_type += np.bincount(ev.etype, minlength=3)
        self.dup_rows += int(ev.dup.sum())
        self.dup_by_type += np.bincount(ev.etype[ev.dup], minlength=3)
        buy = (ev.etype == PURCHASE) & ~ev.dup
        self.purchases_dedup += int(buy.sum())
        self.day_purchases[day] += int((ev.etype == PURCHASE).sum())
        self.revenue_cents += int(ev.cents[buy].sum())
        self.price_zero_rows += int((ev.cents == 0).sum())
        self.custom_price_rows += int((ev.run < 0).sum())
        users = sess_user[ev.sess]
        self.user_rows += np.bincount(users, minlength=len(self.user_rows))
        self.user_purchases += np.bincount(users[buy], minlength=len(self.user_rows))

    def add_sessions(self, stats, sess_user: np.ndarray) -> None:
        present = stats.rows > 0
        np.minimum.at(self.user_first, sess_user[stats.sess[present]], stats.first[present])
        self.sessions += int(present.sum())
        self.gap_sessions += int((present & (stats.max_gap > 1800)).sum())
        self.long_sessions += int((present & (stats.last - stats.first > DAY)).sum())
        self.truncated_rows += int(stats.truncated.sum())

    def merge(self, other: "Totals") -> None:
        """Add the counts of days made elsewhere (sums and minima: order does not matter)."""
        for name, value in vars(other).items():
            if name == "user_first":
                np.minimum(self.user_first, value, out=self.user_first)
            elif isinstance(value, np.ndarray):
                getattr(self, name).__iadd__(value)
            else:
                setattr(self, name, getattr(self, name) + value)


class DayMaker:
    """Everything a day needs, built before any fork and only read afterwards."""

    def __init__(self, cfg, tl, cat, prices, pop, sk, uuid_key: int, ev_dir, day_rng,
                 formatter: CsvFormatter | ArrowFormatter) -> None:
        self.cfg, self.tl, self.cat, self.prices, self.pop, self.sk = cfg, tl, cat, prices, pop, sk
        self.day_rng = day_rng
        self.fmt = cfg.fmt
        self.stems = [file_stem(tl, d, cfg.split) for d in range(cfg.days)]
        per_file = Counter(self.stems)
        # a file of one day is made whole by whoever makes the day
        self.solo = [per_file[s] == 1 for s in self.stems]
        self.paths = {s: ev_dir / f"{s}.{cfg.fmt}" for s in per_file}
        self.scratch: str | None = None  # where workers leave day tables for the parent
        formatter.for_sessions(pop.user_id, sk.user, sk.uuid_src, uuid_key)
        self.csv = formatter if isinstance(formatter, CsvFormatter) else None
        self.arrow = formatter if isinstance(formatter, ArrowFormatter) else None

    @staticmethod
    def formatter(cfg, tl, cat, prices) -> CsvFormatter | ArrowFormatter:
        """The part of the formatting that does not depend on the sessions."""
        if cfg.fmt == "parquet":
            return ArrowFormatter(cat, tl.start_epoch)
        return CsvFormatter(cat, prices)

    def path(self, day: int):
        return self.paths[self.stems[day]]

    def first_of_file(self, day: int) -> bool:
        return day == 0 or self.stems[day - 1] != self.stems[day]

    def last_of_file(self, day: int) -> bool:
        return day + 1 == len(self.stems) or self.first_of_file(day + 1)

    def materialize(self, day: int):
        """(own rows, {later day: rows falling on it}, session stats) of the sessions that
        start on `day`; rows keep the order they were made in."""
        ev, stats = materialize_day(day, self.cfg, self.tl, self.cat, self.prices, self.pop,
                                    self.sk, self.day_rng(self.cfg.seed, day))
        target = ev.t // DAY
        later = target > day
        if not later.any():
            return ev, {}, stats
        over = ev.take(np.nonzero(later)[0])
        over_target = target[later]
        carry = {int(d): over.take(np.nonzero(over_target == d)[0])
                 for d in np.unique(over_target)}
        if max(carry) >= self.cfg.days:
            raise RuntimeError("rows after the window end")
        return ev.take(np.nonzero(~later)[0]), carry, stats

    def rows(self, day: int, carry: list[Events], own: Events) -> Events:
        """The rows of `day` in file order: carry (earlier days first) then own rows,
        stably sorted by time."""
        ev = Events.concat([*carry, own]) if carry else own
        return ev.take(stable_order(ev.t - day * DAY))

    def csv_text(self, day: int, ev: Events) -> list:
        if len(ev) == 0:
            return []
        return self.csv.body(ev, day, self.csv.day_table(day, self.tl.day_label(day)))

    def write_solo(self, day: int, ev: Events) -> None:
        """Write the whole file of a day that is alone in it."""
        path = self.path(day)
        if self.fmt == "parquet":
            writer = open_parquet(path)
            write_row_groups(writer, self.arrow.table(ev))
            writer.close()
            return
        f = CsvFile(path, self.fmt == "csv.gz", self.cfg.gzip_level)
        chunk = self.csv_chunk(day, ev, lambda text: None, lambda: f.window)
        write_at(path, f.place(chunk), chunk.pieces)
        f.finish()

    def csv_chunk(self, day: int, ev: Events, send_tail, get_window) -> Chunk:
        """The chunk of `ev` for a csv or csv.gz file. gzip: the end of this day's text goes
        out through `send_tail` before compressing, and `get_window` (the end of the file's
        text before this day) is asked for only when the first block needs it."""
        text = self.csv_text(day, ev)
        if self.fmt == "csv":
            return Chunk(len(ev), text)
        gz = GzipText(text, self.cfg.gzip_level)
        send_tail(gz.tail)
        gz.deflate_own()
        gz.deflate_rest(get_window())
        return gz.chunk(len(ev))


# ---------------------------------------------------------------------------------------
# one process


def make_days_here(mk: DayMaker, totals: Totals, progress) -> dict[str, int]:
    """Make every day in this process; returns rows per file."""
    files: dict[str, CsvFile] = {}
    writers = {}
    carry: dict[int, list[Events]] = {}
    file_rows = Counter()
    for day in range(mk.cfg.days):
        own, later, stats = mk.materialize(day)
        for d, part in later.items():
            carry.setdefault(d, []).append(part)
        ev = mk.rows(day, carry.pop(day, []), own)
        totals.add_sessions(stats, mk.sk.user)
        totals.add_rows(ev, day, mk.sk.user)
        stem = mk.stems[day]
        file_rows[stem] += len(ev)
        if mk.solo[day]:
            mk.write_solo(day, ev)
        elif mk.fmt == "parquet":
            if mk.first_of_file(day):
                writers[stem] = open_parquet(mk.path(day))
            write_row_groups(writers[stem], mk.arrow.table(ev))
        else:
            if mk.first_of_file(day):
                files[stem] = CsvFile(mk.path(day), mk.fmt == "csv.gz", mk.cfg.gzip_level)
            f = files[stem]
            window = f.window
            chunk = mk.csv_chunk(day, ev, f.extend_window, lambda: window)
            write_at(f.path, f.place(chunk), chunk.pieces)
        if mk.last_of_file(day):
            if stem in files:
                files.pop(stem).finish()
            if stem in writers:
                writers.pop(stem).close()
        progress(len(ev))
    return dict(file_rows)


# ---------------------------------------------------------------------------------------
# worker processes
#
# parent -> worker: ("day", d) ("carry", d, [Events]) ("window", d, bytes)
#                   ("offset", d, int) ("stop",)
# worker -> parent: ("later", d, {day: Events}) ("tail", d, bytes) ("chunk", d, rows, Chunk
#                   without its bytes) ("table", d, rows, path of an Arrow IPC file)
#                   ("file", d, rows) ("totals", Totals) ("error", text)


class _Inbox:
    """A worker's messages from the parent, taken by kind; offsets are acted on as soon as
    they arrive (the chunk they place is already made)."""

    def __init__(self, conn: Connection, on_offset) -> None:
        self.conn, self.on_offset = conn, on_offset
        self.stash: deque = deque()

    def take(self, kinds: tuple[str, ...], day: int | None = None):
        while True:
            for msg in self.stash:
                if msg[0] in kinds and (day is None or msg[1] == day):
                    self.stash.remove(msg)
                    return msg
            self.pump()

    def pump(self) -> None:
        """Wait for one message."""
        msg = self.conn.recv()
        if msg[0] == "offset":
            self.on_offset(msg[1], msg[2])
        else:
            self.stash.append(msg)


def _worker(mk: DayMaker, conn: Connection) -> None:
    try:
        _work(mk, conn)
    except BaseException:
        conn.send(("error", traceback.format_exc()))
        raise


def _work(mk: DayMaker, conn: Connection) -> None:
    totals = Totals(len(mk.pop), mk.cfg.days)
    unplaced: dict[int, Chunk] = {}

    def write_placed(day: int, offset: int) -> None:
        write_at(mk.path(day), offset, unplaced.pop(day).pieces)

    inbox = _Inbox(conn, write_placed)
    while True:
        msg = inbox.take(("day", "stop"))
        if msg[0] == "stop":
            break
        day = msg[1]
        own, later, stats = mk.materialize(day)
        conn.send(("later", day, later))
        carry = inbox.take(("carry",), day)[2]
        ev = mk.rows(day, carry, own)
        totals.add_sessions(stats, mk.sk.user)
        totals.add_rows(ev, day, mk.sk.user)
        if mk.solo[day]:
            mk.write_solo(day, ev)
            conn.send(("file", day, len(ev)))
        elif mk.fmt == "parquet":
            # through a file in shared memory: a pipe would copy the table three times
            table = mk.arrow.table(ev)
            path = os.path.join(mk.scratch, f"{day}.arrow")
            with pa.OSFile(path, "wb") as f, pa.ipc.new_stream(f, table.schema) as ipc:
                ipc.write_table(table)
            conn.send(("table", day, len(ev), path))
        else:
            chunk = mk.csv_chunk(day, ev, lambda tail: conn.send(("tail", day, tail)),
                                 lambda: inbox.take(("window",), day)[2])
            unplaced[day] = chunk
            conn.send(("chunk", day, len(ev), chunk.without_bytes()))
    while unplaced:
        inbox.pump()  # writes the remaining chunks as their offsets come
    conn.send(("totals", totals))


class _Sender:
    """Sends to one worker from a thread, so the parent never blocks on a full pipe while
    that worker is itself sending."""

    def __init__(self, conn: Connection) -> None:
        self.conn = conn
        self.q: queue.Queue = queue.Queue()
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self) -> None:
        while True:
            msg = self.q.get()
            if msg is None:
                return
            try:
                self.conn.send(msg)
            except (BrokenPipeError, ConnectionResetError):
                return

    def send(self, msg) -> None:
        self.q.put(msg)

    def close(self) -> None:
        self.q.put(None)
        self.thread.join()


class _Parent:
    """The parent's side: hands out days in order, relays the carry and the gzip windows,
    places chunks and writes the parquet row groups of multi-day files."""

    def __init__(self, mk: DayMaker, n_workers: int) -> None:
        self.mk = mk
        self.progress = None
        self.days = mk.cfg.days
        self.next_day = 0
        self.owner: dict[int, int] = {}
        self.later_seen = 0  # days 0 .. later_seen-1 have handed over their carry
        self.reported: set[int] = set()
        self.carry: dict[int, list[tuple[int, Events]]] = {}
        self.want_carry: set[int] = set()
        self.gz = mk.fmt == "csv.gz"
        self.files: dict[str, CsvFile] = {}
        for day in range(self.days):
            if not mk.solo[day] and mk.fmt != "parquet" and mk.first_of_file(day):
                self.files[mk.stems[day]] = CsvFile(mk.path(day), self.gz, mk.cfg.gzip_level)
        self.tails: dict[int, bytes] = {}
        self.window_next = 0  # first day whose window is not yet known
        self.windows: dict[int, bytes] = {}
        self.chunks: dict[int, Chunk] = {}
        self.place_next = 0
        self.tables: dict[int, pa.Table | None] = {}
        self.table_next = 0
        self.pq_futures: deque[Future] = deque()
        self.pq_writers: dict = {}
        self.file_rows = Counter()
        self.totals: list[Totals] = []
        self.idle: list[int] = []
        if mk.fmt == "parquet" and not all(mk.solo):
            mk.scratch = tempfile.mkdtemp(prefix="synth-", dir=_shared_memory_dir())
        ctx = mp.get_context("fork")
        self.conns, self.procs = [], []
        for _ in range(n_workers):
            mine, theirs = ctx.Pipe(duplex=True)
            proc = ctx.Process(target=_worker, args=(mk, theirs), daemon=True)
            proc.start()
            theirs.close()
            self.conns.append(mine)
            self.procs.append(proc)
        # threads only once every worker is forked
        self.senders = [_Sender(c) for c in self.conns]
        self.pq_pool = ThreadPoolExecutor(max_workers=1)

    def run(self, progress) -> dict[str, int]:
        self.progress = progress
        try:
            for w in range(len(self.procs)):
                self._dispatch(w)
            live = set(range(len(self.procs)))
            while live:
                ready = wait([self.conns[w] for w in live], timeout=0.05)
                for conn in ready:
                    w = self.conns.index(conn)
                    if self._receive(w, conn.recv()):
                        live.discard(w)
                self._feed_idle()
            while self.pq_futures:
                self.pq_futures.popleft().result()
            for writer in self.pq_writers.values():
                writer.close()
            for p in self.procs:
                p.join()
            return dict(self.file_rows)
        finally:
            self._shutdown()

    def _shutdown(self) -> None:
        for p in self.procs:
            if p.is_alive():
                p.terminate()
                p.join()
        for s in self.senders:
            s.close()
        for c in self.conns:
            c.close()
        self.pq_pool.shutdown(wait=True)
        if self.mk.scratch:
            shutil.rmtree(self.mk.scratch, ignore_errors=True)

    # --- handing out days ---------------------------------------------------------------

    def _dispatch(self, w: int) -> None:
        if self.next_day >= self.days:
            self.senders[w].send(("stop",))
            return
        if self.mk.fmt == "parquet" and len(self.pq_futures) >= PARQUET_BACKLOG:
            self.idle.append(w)  # the parquet writer is behind: hold this worker back
            return
        day = self.next_day
        self.next_day += 1
        self.owner[day] = w
        self.senders[w].send(("day", day))
        self._send_windows()

    def _feed_idle(self) -> None:
        while self.pq_futures and self.pq_futures[0].done():
            self.pq_futures.popleft().result()
        while self.idle and len(self.pq_futures) < PARQUET_BACKLOG:
            self._dispatch(self.idle.pop(0))

    # --- messages -----------------------------------------------------------------------

    def _receive(self, w: int, msg) -> bool:
        kind, mk = msg[0], self.mk
        if kind == "error":
            raise RuntimeError(f"generator worker failed:\n{msg[1]}")
        if kind == "totals":
            self.totals.append(msg[1])
            return True
        day = msg[1]
        if kind == "later":
            for d, part in msg[2].items():
                self.carry.setdefault(d, []).append((day, part))
            self.reported.add(day)
            while self.later_seen in self.reported:
                self.later_seen += 1
            self.want_carry.add(day)
            self._send_carries()
        elif kind == "tail":
            self.tails[day] = msg[2]
            self._send_windows()
        elif kind == "chunk":
            self._done(day, msg[2])
            self.chunks[day] = msg[3]
            self._place()
            self._dispatch(w)
        elif kind == "table":
            self._done(day, msg[2])
            with pa.memory_map(msg[3]) as mapped:
                self.tables[day] = pa.ipc.open_stream(mapped).read_all()  # no copy
            os.unlink(msg[3])  # the pages stay until the table is written
            self._write_tables()
            self._dispatch(w)
        elif kind == "file":
            self._done(day, msg[2])
            if mk.fmt == "parquet":
                self.tables[day] = None
                self._write_tables()
            else:
                self.chunks[day] = None
                self._place()
            self._dispatch(w)
        return False

    def _done(self, day: int, rows: int) -> None:
        self.file_rows[self.mk.stems[day]] += rows
        self.progress(rows)

    def _send_carries(self) -> None:
        """A day's carry is complete once every earlier day has handed over its own."""
        for day in sorted(d for d in self.want_carry if d <= self.later_seen):
            parts = sorted(self.carry.pop(day, []), key=lambda p: p[0])
            self.senders[self.owner[day]].send(("carry", day, [p for _, p in parts]))
            self.want_carry.discard(day)

    def _send_windows(self) -> None:
        """gzip: the window of a day is the end of the text before it in its file."""
        if not self.gz:
            return
        mk = self.mk
        while self.window_next < self.next_day:
            day = self.window_next
            if mk.solo[day]:
                self.window_next += 1
                continue
            f = self.files[mk.stems[day]]
            if not mk.first_of_file(day):
                prev = day - 1
                if prev not in self.tails:
                    return
                f.extend_window(self.tails.pop(prev))
            self.senders[self.owner[day]].send(("window", day, f.window))
            self.window_next += 1

    def _place(self) -> None:
        mk = self.mk
        while self.place_next < self.days and self.place_next in self.chunks:
            day = self.place_next
            chunk = self.chunks.pop(day)
            self.place_next += 1
            if chunk is None:
                continue
            f = self.files[mk.stems[day]]
            self.senders[self.owner[day]].send(("offset", day, f.place(chunk)))
            if mk.last_of_file(day):
                f.finish()

    def _write_tables(self) -> None:
        mk = self.mk
        while self.table_next < self.days and self.table_next in self.tables:
            day = self.table_next
            table = self.tables.pop(day)
            self.table_next += 1
            if table is None:
                continue
            self.pq_futures.append(self.pq_pool.submit(
                self._write_table, mk.stems[day], mk.path(day), mk.first_of_file(day),
                mk.last_of_file(day), table))

    def _write_table(self, stem, path, first: bool, last: bool, table: pa.Table) -> None:
        if first:
            self.pq_writers[stem] = open_parquet(path)
        write_row_groups(self.pq_writers[stem], table)
        if last:
            self.pq_writers.pop(stem).close()


def make_days(mk: DayMaker, workers: int, totals: Totals, progress_bar,
              meanwhile=lambda: None) -> dict[str, int]:
    """Make every day with `workers` processes (1: in this one); returns rows per file and
    adds the counts to `totals`. `progress_bar()` makes a tqdm-like bar; it and `meanwhile`
    (run in this process while the workers make the days) start once the workers are
    forked, so that no thread of this process is running at the fork."""
    if workers <= 1 or mk.cfg.days == 1:
        meanwhile()
        with progress_bar() as bar:
            return make_days_here(mk, totals, bar.update)
    parent = _Parent(mk, min(workers, mk.cfg.days))
    with progress_bar() as bar, ThreadPoolExecutor(max_workers=1) as pool:
        side = pool.submit(meanwhile)
        file_rows = parent.run(bar.update)
        side.result()
    for t in parent.totals:
        totals.merge(t)
    return file_rows


def _shared_memory_dir(need: int = 2 << 30) -> str | None:
    """/dev/shm when it has room for a few large day tables (containers often give it
    64 MB), else None: the system's temporary folder."""
    try:
        st = os.statvfs("/dev/shm")
    except OSError:
        return None
    return "/dev/shm" if st.f_bavail * st.f_frsize >= need else None


def default_workers() -> int:
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (
        os.cpu_count() or 1)
