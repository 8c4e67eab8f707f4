"""Online Retail II staging (models/staging/online_retail), built with
--vars '{source: online_retail}' on the real 10-country slice and on hand-made files, and
checked against an independent pandas/Python computation of the rules documented in
_online_retail__docs.md: accounting per file, the sheet overlap, return netting, flags."""
from __future__ import annotations

import csv
import fnmatch
import re
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal, InvalidOperation
from math import isfinite
from pathlib import Path

import pandas as pd
import pytest

from dbt_project import REPO, count_data_lines, query, run_dbt

pytestmark = pytest.mark.dbt

FIXTURE = REPO / "tests/fixtures/online_retail/online_retail_II__10_countries.csv"
SEED = REPO / "seeds/online_retail/online_retail_non_product_stock_codes.csv"
HEADER = "Invoice,StockCode,Description,Quantity,InvoiceDate,Price,Customer ID,Country"
DATE_FORMATS = ("%Y-%m-%d %H:%M:%S", "%Y-%m-%d %H:%M", "%m/%d/%Y %H:%M", "%m/%d/%Y %H:%M:%S")


def build(database: Path, invoices: Path | str):
    """`dbt build` of the Online Retail II staging layer, its seed and tests."""
    return run_dbt(
        ["build", "--select", "path:models/staging/online_retail", "path:seeds/online_retail",
         "--vars", "{source: online_retail}"],
        database, FIXTURE,  # REES46_EVENTS: unused, no REES46 model is selected
        extra_env={"ONLINE_RETAIL_INVOICES": str(Path(invoices).absolute())})


# ---------------------------------------------------------------- the reference computation

def _integral(text: str | None) -> int | None:
    try:
        value = float(text)
    except (TypeError, ValueError):
        return None
    return int(value) if isfinite(value) and value == int(value) else None


def _timestamp(text: str) -> datetime | None:
    for layout in DATE_FORMATS:
        try:
            return datetime.strptime(text, layout)
        except ValueError:
            pass
    return None


def _price(text: str) -> Decimal | None:
    try:
        return Decimal(text).quantize(Decimal("0.001"))
    except InvalidOperation:
        return None


def parse(raw: dict[str, str]) -> tuple[str | None, tuple]:
    """(reject reason or None, the eight typed values) of one raw line, by the docs' rules."""
    text = {k: (v.strip() if isinstance(v, str) else "") for k, v in raw.items()}
    invoice, stock = text["Invoice"].upper(), text["StockCode"].upper()
    quantity, when = _integral(text["Quantity"]), _timestamp(text["InvoiceDate"])
    price = _price(text["Price"]) if text["Price"] else None
    customer = _integral(text["Customer ID"])
    reason = None
    if not invoice:
        reason = "missing_invoice"
    elif not re.fullmatch(r"[CA]?[0-9]+", invoice):
        reason = "unparsable_invoice"
    elif not stock:
        reason = "missing_stock_code"
    elif not text["Quantity"]:
        reason = "missing_quantity"
    elif quantity is None:
        reason = "unparsable_quantity"
    elif quantity == 0:
        reason = "zero_quantity"
    elif not text["InvoiceDate"]:
        reason = "missing_invoice_date"
    elif when is None:
        reason = "unparsable_invoice_date"
    elif not text["Price"]:
        reason = "missing_price"
    elif price is None:
        reason = "unparsable_price"
    elif text["Customer ID"] and customer is None:
        reason = "unparsable_customer_id"
    elif invoice.startswith("C") and quantity > 0:
        reason = "cancellation_with_positive_quantity"
    elif price < 0 and not invoice.startswith("A"):
        reason = "negative_price"
    key = (invoice, stock, text["Description"] or None, quantity, when, price, customer,
           text["Country"] or None)
    return reason, key


@dataclass
class Reference:
    read: Counter = field(default_factory=Counter)           # per file
    kept: Counter = field(default_factory=Counter)
    duplicates: Counter = field(default_factory=Counter)
    rejected: Counter = field(default_factory=Counter)       # per (file, reason)
    lines: list = field(default_factory=list)                # kept typed keys
    repeats_within_sheet: int = 0
    returns: Counter = field(default_factory=Counter)        # lines per outcome
    unmatched_quantity: Counter = field(default_factory=Counter)
    net: dict = field(default_factory=dict)                  # customer -> (qty, revenue)
    # customer -> (purchase lines, orders, revenue) by the purchase contract's rule: a sale
    # line counts while units of it are kept; its value less the refunds netted against it
    customers: dict = field(default_factory=dict)


def reference(files: dict[str, pd.DataFrame], parse_errors: dict[str, int]) -> Reference:
    """The documented rules, computed line by line in Python. `files` maps a file name to
    its lines as text; `parse_errors` the lines the reader cannot split, per file."""
    ref = Reference()
    copies: dict[tuple, Counter] = defaultdict(Counter)
    for name, frame in files.items():
        ref.read[name] = len(frame) + parse_errors.get(name, 0)
        if parse_errors.get(name):
            ref.rejected[(name, "wrong_column_count")] += parse_errors[name]
        for raw in frame.to_dict("records"):
            reason, key = parse(raw)
            if reason:
                ref.rejected[(name, reason)] += 1
            else:
                copies[key][(name, raw.get("sheet") or "")] += 1
    # The k-th copy is kept from the first sheet holding k copies.
    for key, per_sheet in copies.items():
        sheets = sorted(per_sheet)
        for k in range(1, max(per_sheet.values()) + 1):
            holders = [sheet for sheet in sheets if per_sheet[sheet] >= k]
            ref.kept[holders[0][0]] += 1
            ref.lines.append(key)
            for sheet in holders[1:]:
                ref.duplicates[sheet[0]] += 1
        ref.repeats_within_sheet += max(per_sheet.values()) - 1

    seed = pd.read_csv(SEED, dtype=str)
    patterns = [p.replace("%", "*").replace("_", "?") for p in seed.stock_code_pattern]

    def is_product(stock: str) -> bool:
        return not any(fnmatch.fnmatchcase(stock, p) for p in patterns)

    sales, returns = defaultdict(list), defaultdict(list)
    net_qty, net_revenue = Counter(), defaultdict(Decimal)
    for invoice, stock, _, quantity, when, price, customer, _ in ref.lines:
        if invoice.startswith("C"):
            if customer is None or not is_product(stock):
                reason = "no_customer" if customer is None else "non_product"
                ref.returns[reason] += 1
                ref.returns["unmatched"] += 1
                ref.unmatched_quantity[reason] -= quantity
            else:
                returns[(customer, stock)].append((when, -quantity, price))
        elif invoice[0].isdigit() and quantity > 0 and customer is not None \
                and is_product(stock):
            sales[(customer, stock)].append([when, quantity, invoice, quantity * price])
            net_qty[customer] += quantity
            net_revenue[customer] += quantity * price
    # Returns in time order, each from the sales at or before it, oldest first, capped.
    for (customer, stock), its_returns in returns.items():
        its_sales = sorted(sales.get((customer, stock), []), key=lambda sale: sale[0])
        for when, quantity, price in sorted(its_returns, key=lambda r: r[0]):
            earlier = [sale for sale in its_sales if sale[0] <= when]
            need = quantity
            for sale in earlier:
                take = min(need, sale[1])
                sale[1] -= take
                sale[3] -= take * price  # refunded at the cancellation's price
                need -= take
            matched = quantity - need
            net_qty[customer] -= matched
            net_revenue[customer] -= matched * price
            if need:
                reason = "exceeds_earlier_sales" if earlier else "no_earlier_sale"
                ref.returns[reason] += 1
                ref.unmatched_quantity[reason] += need
            ref.returns["matched" if matched == quantity else
                        "partly_matched" if matched else "unmatched"] += 1
    buyers = {customer for customer, _ in sales}
    ref.net = {c: (net_qty[c], net_revenue[c]) for c in buyers}
    kept_lines, orders, revenue = Counter(), defaultdict(set), defaultdict(Decimal)
    for (customer, _), its_sales in sales.items():
        for _, left, invoice, value in its_sales:
            if left > 0:
                kept_lines[customer] += 1
                orders[customer].add(invoice)
                revenue[customer] += value
    ref.customers = {c: (kept_lines[c], len(orders[c]), revenue[c]) for c in kept_lines}
    return ref


# ------------------------------------------------------------------ warehouse read-outs

def audit(database: Path) -> dict[str, tuple]:
    return {Path(f).name: tuple(rest) for f, *rest in query(database, """
        select source_file, rows_read, rows_kept, rows_duplicate, rows_rejected
        from stg_online_retail__load_audit""")}


def rejected(database: Path) -> Counter:
    return Counter({(Path(f).name, reason): n for f, reason, n in query(database, """
        select source_file, reject_reason, count(*)
        from stg_online_retail__invoice_lines_rejected group by all""")})


def returns_outcomes(database: Path) -> tuple[Counter, Counter]:
    """Return lines per outcome (matched, partly_matched, unmatched, and per unmatched
    reason), and the unmatched quantity per reason."""
    lines = Counter()
    for reason, n in query(database, """
            select unmatched_reason, count(distinct return_line_id)
            from stg_online_retail__returns where not is_matched group by 1"""):
        lines[reason] = n
    for outcome, n in query(database, """
            with per_line as (
                select return_line_id, bool_and(is_matched) as all_matched,
                       bool_or(is_matched) as any_matched
                from stg_online_retail__returns group by 1)
            select case when all_matched then 'matched'
                        when any_matched then 'partly_matched' else 'unmatched' end,
                   count(*)
            from per_line group by 1"""):
        lines[outcome] = n
    quantity = Counter({reason: q for reason, q in query(database, """
        select unmatched_reason, sum(quantity) from stg_online_retail__returns
        where not is_matched group by 1""")})
    return lines, quantity


def net_per_customer(database: Path) -> dict[int, tuple[int, Decimal]]:
    """Product sales minus matched returns, per customer, from the staging models."""
    return {c: (int(q), Decimal(r)) for c, q, r in query(database, """
        with sold as (
            select customer_id, sum(quantity) as quantity, sum(line_amount) as revenue
            from stg_online_retail__invoice_lines
            where line_type = 'sale' and is_product and has_customer
            group by 1),
        refunded as (
            select customer_id, sum(quantity) as quantity, sum(refund_amount) as revenue
            from stg_online_retail__returns where is_matched group by 1)
        select sold.customer_id, sold.quantity - coalesce(refunded.quantity, 0),
               sold.revenue - coalesce(refunded.revenue, 0)
        from sold left join refunded using (customer_id)""")}


# ---------------------------------------------------------------------- the real slice

@pytest.fixture(scope="module")
def real(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Reference]:
    database = tmp_path_factory.mktemp("online_retail") / "wh.duckdb"
    result = build(database, FIXTURE)
    assert result.returncode == 0, result.stdout[-6000:]
    frame = pd.read_csv(FIXTURE, dtype=str, keep_default_na=False)
    return database, reference({FIXTURE.name: frame}, {})


def test_real_slice_lines_are_accounted_for(real: tuple[Path, Reference]) -> None:
    """34,766 lines in: kept + overlap duplicates + rejected, per file, as computed
    independently (and counted from the bytes)."""
    database, ref = real
    name = FIXTURE.name
    assert count_data_lines(FIXTURE) == ref.read[name] == 34_766
    read, kept, duplicates, n_rejected = audit(database)[name]
    assert (read, kept, duplicates, n_rejected) == (
        ref.read[name], ref.kept[name], ref.duplicates[name], 0)
    assert kept + duplicates + n_rejected == read
    assert rejected(database) == Counter()
    [(lines, dup_sum)] = query(database, """
        select count(*), sum(duplicate_count) from stg_online_retail__invoice_lines""")
    assert (lines, dup_sum) == (kept, duplicates)


def test_real_slice_sheet_overlap(real: tuple[Path, Reference]) -> None:
    """The 441 lines of 2010-12-01..09 are in both sheets: kept once. The 74 extra copies
    of lines repeated within one sheet (same invoice, item, quantity, price) are kept."""
    database, ref = real
    assert ref.duplicates[FIXTURE.name] == 441
    assert ref.repeats_within_sheet == 74
    [(duplicates, first, last, repeats)] = query(database, """
        select sum(duplicate_count),
               min(invoice_local_at) filter (where duplicate_count > 0),
               max(invoice_local_at) filter (where duplicate_count > 0),
               count(*) filter (where occurrence_in_sheet > 1)
        from stg_online_retail__invoice_lines""")
    assert duplicates == 441 and repeats == 74
    assert str(first) >= "2010-12-01" and str(last) < "2010-12-10"
    [(sheets,)] = query(database, """
        select count(distinct sheet_name) from stg_online_retail__invoice_lines
        where duplicate_count > 0""")
    assert sheets == 1  # kept from the first sheet, Year 2009-2010


def test_real_slice_return_netting(real: tuple[Path, Reference]) -> None:
    """Every customer's net quantity and net revenue (product sales minus matched returns),
    and returns matched and unmatched by reason, equal the sequential computation."""
    database, ref = real
    assert net_per_customer(database) == ref.net
    lines, quantity = returns_outcomes(database)
    assert lines == ref.returns
    assert quantity == ref.unmatched_quantity
    [(return_lines,)] = query(database, """
        select count(*) from stg_online_retail__invoice_lines where line_type = 'return'""")
    assert return_lines == lines["matched"] + lines["partly_matched"] + lines["unmatched"]


def test_real_slice_flags(real: tuple[Path, Reference]) -> None:
    """Non-product lines by kind, zero prices and lines without customer, as counted in
    pandas on the deduplicated lines; the audit reports the same."""
    database, ref = real
    seed = pd.read_csv(SEED, dtype=str)
    by_code = {p: k for p, k in zip(seed.stock_code_pattern, seed.line_kind)}
    expected_kinds = Counter(by_code.get(stock, "product") for _, stock, *_ in ref.lines)
    kinds = Counter(dict(query(database, """
        select line_kind, count(*) from stg_online_retail__invoice_lines group by 1""")))
    assert kinds == expected_kinds
    assert set(kinds) == {"product", "postage", "manual", "adjustment", "discount"}
    zero = sum(1 for key in ref.lines if key[5] == 0)
    no_customer = sum(1 for key in ref.lines if key[6] is None)
    [row] = query(database, """
        select rows_non_product, rows_zero_price, rows_without_customer, rows_negative_price
        from stg_online_retail__load_audit""")
    assert row == (sum(expected_kinds.values()) - expected_kinds["product"], zero,
                   no_customer, 0)


def test_invoice_time_is_uk_local_time_converted_to_utc(real: tuple[Path, Reference]) -> None:
    database, _ = real
    shifts = dict(query(database, """
        select extract(month from invoice_local_at) in (6, 7) as summer,
               max(invoice_local_at - invoice_at)
        from stg_online_retail__invoice_lines
        where extract(month from invoice_local_at) in (1, 6, 7, 12)
        group by 1"""))
    assert shifts == {True: timedelta(hours=1), False: timedelta(0)}


# --------------------------------------------------------------------- hand-made cases

EDGE_A = [
    # a return larger than its sale: 5 bought, 8 returned
    "700001,10001,MUG,5,2011-01-10 10:00:00,2.00,90001.0,France",
    "C700002,10001,MUG,-8,2011-01-11 10:00:00,2.00,90001.0,France",
    # a return with no sale
    "C700003,10002,BOWL,-2,2011-01-11 11:00:00,3.00,90002.0,France",
    # a line repeated within one invoice: both kept
    "700004,10003,CUP,1,2011-01-12 09:00:00,1.50,90003.0,Spain",
    "700004,10003,CUP,1,2011-01-12 09:00:00,1.50,90003.0,Spain",
    # a return before any sale stays unmatched and takes nothing from a later sale,
    # which a later return then nets
    "C700005,10004,JUG,-2,2011-01-12 09:00:00,4.00,90004,Spain",
    "700006,10004,JUG,3,2011-01-13 09:00:00,4.00,90004,Spain",
    "C700028,10004,JUG,-2,2011-01-13 12:00:00,4.00,90004,Spain",
    # first in, first out over two sales and two returns (refund at the return's price)
    "700007,10005,TIN,5,2011-01-14 09:00:00,1.00,90005.0,Italy",
    "C700008,10005,TIN,-3,2011-01-15 09:00:00,1.00,90005.0,Italy",
    "700009,10005,TIN,5,2011-01-16 09:00:00,1.20,90005.0,Italy",
    "C700010,10005,TIN,-6,2011-01-17 09:00:00,1.10,90005.0,Italy",
    # twice here and once in edge_b: kept twice, one duplicate
    "700011,10006,BAG,2,2010-12-05 10:00:00,0.85,90006.0,Belgium",
    "700011,10006,BAG,2,2010-12-05 10:00:00,0.85,90006.0,Belgium",
    # non-product return, return without customer, zero price with Excel's date layout,
    # bad-debt adjustment, stock adjustment
    "C700012,POST,POSTAGE,-1,2011-01-18 09:00:00,18.00,90005.0,Italy",
    "C700013,10007,BOX,-1,2011-01-18 09:00:00,2.00,,Italy",
    "700014,10008,FREE GIFT,3,1/19/2011 9:00,0,90007.0,Italy",
    "A700015,B,Adjust bad debt,1,2011-01-20 09:00:00,-100.00,,United Kingdom",
    "700016,10009,damaged,-4,2011-01-20 10:00:00,0,,United Kingdom",
    # rejected
    "700017,10010,X,abc,2011-01-20 10:00:00,1.00,90008.0,Spain",
    "700018,10010,X,0,2011-01-20 10:00:00,1.00,90008.0,Spain",
    "700019,10010,X,1,2011-01-20 10:00:00,,90008.0,Spain",
    "700020,10010,X,1,yesterday,1.00,90008.0,Spain",
    "700021,10010,X,1,2011-01-20 10:00:00,1.00,12.5,Spain",
    "C700022,10010,X,1,2011-01-20 10:00:00,1.00,90008.0,Spain",
    "700023,10010,X,1,2011-01-20 10:00:00,-1.00,90008.0,Spain",
    "X700024,10010,X,1,2011-01-20 10:00:00,1.00,90008.0,Spain",
    "700025,,X,1,2011-01-20 10:00:00,1.00,90008.0,Spain",
    ",10010,X,1,2011-01-20 10:00:00,1.00,90008.0,Spain",
    "700029,10010,X,,2011-01-20 10:00:00,1.00,90008.0,Spain",
    "700030,10010,X,1,,1.00,90008.0,Spain",
    "700031,10010,X,1,2011-01-20 10:00:00,abc,90008.0,Spain",
    "700026,10010,X,1",
]
EDGE_B = [
    "700011,10006,BAG,2,2010-12-05 10:00:00,0.85,90006,Belgium",  # 90006 = 90006.0
    "700027,10011,VASE,1,2011-02-01 10:00:00,5.00,90009.0,Belgium",
]
# As Excel writes a sheet to "CSV UTF-8": a byte-order mark, CRLF, M/D/YYYY H:MM dates,
# whole customer numbers.
EXCEL_C = [
    '489434,85048,"15CM CHRISTMAS GLASS BALL 20 LIGHTS",12,12/1/2009 7:45,6.95,13085,'
    'United Kingdom',
    "489435,22350,CAT BOWL ,12,7/1/2010 13:05,2.55,13085,United Kingdom",
]
EDGE_FILES = {"edge_a.csv": EDGE_A, "edge_b.csv": EDGE_B, "edge_c.csv": EXCEL_C}


@pytest.fixture(scope="module")
def edge(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Reference]:
    folder = tmp_path_factory.mktemp("online_retail_edge")
    raw = folder / "raw"
    raw.mkdir()
    for name, rows in EDGE_FILES.items():
        if name == "edge_c.csv":
            (raw / name).write_bytes(
                b"\xef\xbb\xbf" + "\r\n".join([HEADER, *rows, ""]).encode())
        else:
            (raw / name).write_text("\n".join([HEADER, *rows]) + "\n")
    database = folder / "wh.duckdb"
    result = build(database, raw / "*.csv")
    assert result.returncode == 0, result.stdout[-6000:]
    frames, wrong_width = {}, Counter()
    for name, rows in EDGE_FILES.items():
        fields = list(csv.reader(rows))
        wrong_width[name] = sum(len(f) != 8 for f in fields)
        frames[name] = pd.DataFrame([f for f in fields if len(f) == 8],
                                    columns=HEADER.split(","))
    return database, reference(frames, wrong_width)


def test_edge_cases_accounting_and_quarantine(edge: tuple[Path, Reference]) -> None:
    database, ref = edge
    assert audit(database) == {"edge_a.csv": (33, 19, 0, 14), "edge_b.csv": (2, 1, 1, 0),
                               "edge_c.csv": (2, 2, 0, 0)}
    assert audit(database) == {
        name: (ref.read[name], ref.kept[name], ref.duplicates[name],
               sum(n for (f, _), n in ref.rejected.items() if f == name))
        for name in EDGE_FILES}
    expected = {reason: 1 for reason in (
        "unparsable_quantity", "zero_quantity", "missing_price", "unparsable_invoice_date",
        "unparsable_customer_id", "cancellation_with_positive_quantity", "negative_price",
        "unparsable_invoice", "missing_stock_code", "wrong_column_count", "missing_invoice",
        "missing_quantity", "missing_invoice_date", "unparsable_price")}
    assert rejected(database) == Counter({("edge_a.csv", r): n for r, n in expected.items()})
    assert rejected(database) == ref.rejected
    [(line,)] = query(database, """
        select source_line from stg_online_retail__invoice_lines_rejected
        where reject_stage = 'parse'""")
    assert line == len(EDGE_A) + 1  # the last line; the header is line 1


def test_edge_cases_repeats_overlap_and_types(edge: tuple[Path, Reference]) -> None:
    database, _ = edge
    rows = query(database, """
        select invoice_id, occurrence_in_sheet, duplicate_count, source_file like '%edge_a.csv'
        from stg_online_retail__invoice_lines
        where invoice_id in ('700004', '700011') order by all""")
    assert rows == [("700004", 1, 0, True), ("700004", 2, 0, True),
                    ("700011", 1, 1, True), ("700011", 2, 0, True)]
    types = dict(query(database, """
        select invoice_id, line_type || ',' || line_kind || ',' || is_zero_price
               || ',' || has_customer
        from stg_online_retail__invoice_lines
        where invoice_id in ('A700015', '700016', '700014', 'C700012', 'C700013')"""))
    assert types == {
        "A700015": "bad_debt_adjustment,adjustment,false,false",
        "700016": "stock_adjustment,product,true,false",
        "700014": "sale,product,true,true",
        "C700012": "return,postage,false,true",
        "C700013": "return,product,false,false",
    }


def test_excel_csv_export_is_read(edge: tuple[Path, Reference]) -> None:
    """Byte-order mark, CRLF, Excel's US dates (UK local time; July is BST), whole customer
    numbers and a trailing space in a description."""
    database, _ = edge
    rows = query(database, """
        select invoice_id, customer_id, invoice_local_at, invoice_at, description, unit_price
        from stg_online_retail__invoice_lines
        where source_file like '%edge_c.csv' order by 1""")
    assert rows == [
        ("489434", 13085, datetime(2009, 12, 1, 7, 45), datetime(2009, 12, 1, 7, 45),
         "15CM CHRISTMAS GLASS BALL 20 LIGHTS", Decimal("6.950")),
        ("489435", 13085, datetime(2010, 7, 1, 13, 5), datetime(2010, 7, 1, 12, 5),
         "CAT BOWL", Decimal("2.550")),
    ]


def test_edge_cases_return_netting(edge: tuple[Path, Reference]) -> None:
    database, ref = edge
    pieces = query(database, """
        select return_invoice_id, coalesce(sale_invoice_id, '-'), quantity,
               coalesce(unmatched_reason, 'matched'), refund_amount
        from stg_online_retail__returns order by all""")
    assert pieces == [
        ("C700002", "-", 3, "exceeds_earlier_sales", Decimal("6.000")),
        ("C700002", "700001", 5, "matched", Decimal("10.000")),
        ("C700003", "-", 2, "no_earlier_sale", Decimal("6.000")),
        ("C700005", "-", 2, "no_earlier_sale", Decimal("8.000")),
        ("C700008", "700007", 3, "matched", Decimal("3.000")),
        ("C700010", "700007", 2, "matched", Decimal("2.200")),
        ("C700010", "700009", 4, "matched", Decimal("4.400")),
        ("C700012", "-", 1, "non_product", Decimal("18.000")),
        ("C700013", "-", 1, "no_customer", Decimal("2.000")),
        ("C700028", "700006", 2, "matched", Decimal("8.000")),
    ]
    net = net_per_customer(database)
    assert net[90001] == (0, Decimal("0"))
    assert net[90004] == (1, Decimal("4"))
    assert net[90005] == (1, Decimal("1.4"))  # 5 x 1.00 + 5 x 1.20 - 3 x 1.00 - 6 x 1.10
    assert net[90003] == (2, Decimal("3"))
    assert net == ref.net
    assert returns_outcomes(database) == (ref.returns, ref.unmatched_quantity)


def test_a_file_with_another_header_stops_the_build(tmp_path: Path) -> None:
    """The first Online Retail data set (2010-2011) names its columns differently: the build
    stops with a message naming the file, instead of mis-reading it."""
    raw = tmp_path / "online_retail_I.csv"
    raw.write_text("InvoiceNo,StockCode,Description,Quantity,InvoiceDate,UnitPrice,"
                   "CustomerID,Country\n"
                   "536365,85123A,WHITE HANGING HEART T-LIGHT HOLDER,6,12/1/2010 8:26,2.55,"
                   "17850,United Kingdom\n")
    result = build(tmp_path / "wh.duckdb", raw)
    assert result.returncode != 0
    assert str(raw) in result.stdout and "does not start with the header" in result.stdout
