"""Readers for the supported log formats, each returning a validated :class:`~bench.data.log.Log`.

Every reader takes the fast path first (pyarrow's CSV engine with explicit dtypes: 1M rows in about a
second) and, only when that fails, a slow diagnostic pass that names the first bad line and column, so a
user with a broken 55M-row file is told exactly where to look.

The two full-size public formats (Tmall, Taobao) are read in blocks and kept in narrow dtypes: ids and
day stamps as int32 where they fit, behaviors as int8, and the string feature columns only for an item's
first row. Memory then follows the interactions (about 17 bytes a row), not the file's text: the 54.9M-row
IJCAI-15 log fits in about 1 GB instead of 15.
"""

from __future__ import annotations

import datetime
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.csv as pacsv

from bench.data.log import BEHAVIORS, INTERACTION_COLUMNS, Log
from bench.errors import BenchError

# Raw behavior codes of each format, mapped onto the canonical vocabulary.
TMALL_ACTIONS: Mapping[int, str] = {0: "click", 1: "cart", 2: "buy", 3: "fav"}
TAOBAO_ACTIONS: Mapping[str, str] = {"pv": "click", "fav": "fav", "cart": "cart", "buy": "buy"}
CANONICAL_ACTIONS: Mapping[str, str] = {b: b for b in BEHAVIORS}

@dataclass(frozen=True)
class DataChecks:
    """Plausibility rules applied while reading a log (the dataset YAML's ``checks:`` section)."""

    earliest: str = "1990-01-01"
    """No interaction happens before this date (ISO-8601)."""
    latest: str | None = None
    """... nor after this one; None: one year after the data file's modification time."""
    bad_timestamps: str = "error"
    """``error``: a timestamp outside [earliest, latest] (or beyond 64-bit range) stops the command, naming
    file, line and column; ``drop``: such rows are dropped and counted."""
    min_feature_coverage: float = 0.5
    """An items.csv/users.csv that describes less than this share of the log's ids is an error."""

    def window(self, file: Path) -> tuple[float, float]:
        """[earliest, latest] in unix seconds."""
        if self.bad_timestamps not in ("error", "drop"):
            raise BenchError(f"checks.bad_timestamps: '{self.bad_timestamps}' is not one of error, drop")
        def seconds(text: str, field: str) -> float:
            try:
                day = datetime.datetime.fromisoformat(str(text))
            except ValueError:
                raise BenchError(f"checks.{field}: '{text}' is not an ISO-8601 date") from None
            return (day if day.tzinfo else day.replace(tzinfo=datetime.UTC)).timestamp()

        low = seconds(self.earliest, "earliest")
        high = seconds(self.latest, "latest") if self.latest is not None else file.stat().st_mtime + 366 * 86400
        return low, high


class TimestampWindow:
    """The checks' timestamp window applied block by block: rows outside it are dropped and counted, and
    with ``bad_timestamps: error`` :meth:`finish` then stops the command, naming the first such line (so
    the count in the message covers the whole file, not one block)."""

    def __init__(self, file: Path, column: str, checks: DataChecks, header: bool = True) -> None:
        self.file, self.column, self.checks, self.header = file, column, checks, header
        self.low = self.high = 0.0  # read from the checks (and the file's date) with the first block
        self.bad = 0
        self.first: tuple[int, object, float] | None = None  # (row, raw cell, seconds) of the first bad row

    def keep(self, seconds: np.ndarray, raw: pd.Series | np.ndarray, offset: int = 0) -> np.ndarray:
        """(N,) bool rows inside the window, for the block whose first row is row ``offset`` of the file."""
        if offset == 0:
            self.low, self.high = self.checks.window(self.file)
        bad = ~np.isfinite(seconds) | (seconds < self.low) | (seconds > self.high)
        if bad.any():
            i = int(np.flatnonzero(bad)[0])
            if self.first is None:
                self.first = (offset + i, pd.Series(raw, copy=False).iloc[i], float(seconds[i]))
            self.bad += int(bad.sum())
        return ~bad

    def finish(self) -> None:
        if self.bad == 0 or self.checks.bad_timestamps != "error":
            return
        row, cell, seconds = self.first  # type: ignore[misc]
        when = "beyond the 64-bit range" if abs(seconds) >= 2.0**63 else f"at {_date(seconds, time=True)}"
        raise BenchError(
            f"{self.file}: line {_line_of(row, self.header)}: timestamp '{cell}' in column '{self.column}' is {when}, "
            f"outside {_date(self.low)} .. {_date(self.high)} ({self.bad} such row(s); 'checks: {{bad_timestamps: drop}}' "
            "in the dataset config drops them, earliest/latest widen the window)"
        )


def _date(seconds: float, time: bool = False) -> str:
    """Unix seconds as a UTC date (and time) for a message; far outside the calendar, the number."""
    try:
        moment = datetime.datetime.fromtimestamp(seconds, datetime.UTC)
    except (OverflowError, OSError, ValueError):
        return f"{seconds:.0f} s"
    return moment.strftime("%Y-%m-%d %H:%M:%S" if time else "%Y-%m-%d")


TMALL_LOG = "user_log_format1.csv"
TMALL_USERS = "user_info_format1.csv"
TAOBAO_LOG = "UserBehavior.csv"


# --------------------------------------------------------------------------------------- reading


def _require_file(path: Path) -> Path:
    if not path.exists():
        raise BenchError(f"{path}: no such file or folder")
    if not path.is_file():
        raise BenchError(f"{path}: not a file")
    try:
        with open(path, "rb") as fh:
            fh.read(1)
    except OSError as err:
        raise BenchError(f"{path}: cannot be read ({err.strerror})") from None
    return path


def _line_of(index: int, header: bool) -> int:
    """1-based line number in the file of the row at 0-based ``index``."""
    return index + (2 if header else 1)


@dataclass(frozen=True)
class _Columns:
    """What to read from a CSV, its header checked: the columns, their pandas dtypes, whether the file has
    a header row."""

    path: Path
    integer: tuple[str, ...]
    usecols: list[str]
    names: Sequence[str] | None

    @property
    def header(self) -> bool:
        return self.names is None

    def pandas_kwargs(self) -> dict:
        dtype = {c: "int64" for c in self.integer} | {c: "string" for c in self.usecols if c not in self.integer}
        # pyarrow mislabels usecols when names are given; a headerless file is read whole (all required).
        return dict(header=0 if self.header else None, names=self.names, usecols=self.usecols if self.header else None,
                    dtype=dtype)  # fmt: skip


def _columns(path: Path, integer_columns: Sequence[str], other_columns: Sequence[str], optional_columns: Sequence[str],
             names: Sequence[str] | None) -> _Columns:  # fmt: skip
    """Check that ``path`` is a readable CSV with the wanted columns (from its header, or for a headerless
    format from the first line's column count)."""
    _require_file(path)
    wanted = [*integer_columns, *other_columns]
    if names is not None:  # a headerless format: the column count is the only schema there is
        with open(path, encoding="utf-8", errors="replace") as fh:
            first = fh.readline().rstrip("\r\n")
        if first and first.count(",") + 1 != len(names):
            raise BenchError(f"{path}: line 1 has {first.count(',') + 1} columns, expected {len(names)} ({', '.join(names)})")
    try:
        head = pd.read_csv(path, nrows=0, header=0 if names is None else None, names=names)
    except pd.errors.EmptyDataError:
        raise BenchError(f"{path}: the file is empty") from None
    except (UnicodeDecodeError, pd.errors.ParserError) as err:
        raise BenchError(f"{path}: not a readable CSV file ({str(err).splitlines()[0]})") from None
    columns = [str(c).strip() for c in head.columns]
    missing = [c for c in wanted if c not in columns]
    if missing:
        raise BenchError(f"{path}: missing column(s) {', '.join(missing)} (found: {', '.join(columns)})")
    usecols = wanted + [c for c in optional_columns if c in columns]
    return _Columns(path, tuple(integer_columns), usecols, names)


def read_csv(
    path: Path,
    integer_columns: Sequence[str],
    other_columns: Sequence[str] = (),
    optional_columns: Sequence[str] = (),
    names: Sequence[str] | None = None,
) -> pd.DataFrame:
    """Read a (small) CSV whose ``integer_columns`` must be whole numbers, with a precise error otherwise.

    Args:
        path: the file.
        integer_columns: required columns parsed as int64; an empty or non-integer cell is an error.
        other_columns: required columns kept as strings.
        optional_columns: columns kept as strings when present.
        names: column names for a file without a header row (then every column is required).
    """
    cols = _columns(path, integer_columns, other_columns, optional_columns, names)
    try:
        frame = pd.read_csv(path, engine="pyarrow", **cols.pandas_kwargs())
    except Exception:  # noqa: BLE001 - any failure of the fast path is diagnosed precisely below
        _diagnose(cols, 0)
        raise  # _diagnose names the bad cell; reaching here means pyarrow failed where pandas did not
    if len(frame) == 0:
        raise BenchError(f"{path}: the file has a header but no rows")
    return frame


BLOCK_BYTES = 64 << 20
"""Bytes of CSV text parsed at a time by :func:`read_blocks` (about 2M rows of the public logs)."""


_PANDAS_STRINGS = {pa.string(): pd.StringDtype()}.get
"""Arrow text columns become pandas strings (NA for missing cells), as ``pd.read_csv(dtype="string")`` gives."""


class Block:
    """One block of a CSV read by :func:`read_blocks`: the rows from file row ``offset`` on, as Arrow
    columns, converted to numpy or pandas only where a reader needs them."""

    def __init__(self, offset: int, batch: pa.RecordBatch) -> None:
        self.offset, self.batch = offset, batch

    def __len__(self) -> int:
        return self.batch.num_rows

    @property
    def columns(self) -> list[str]:
        return self.batch.schema.names

    def ints(self, name: str) -> np.ndarray:
        """(N,) int64 values of an integer column."""
        return self.batch.column(name).to_numpy()

    def strings(self, name: str) -> pd.Series:
        """(N,) pandas strings of a text column (missing cells NA)."""
        return self.batch.column(name).to_pandas(types_mapper=_PANDAS_STRINGS)

    def rows(self, index: np.ndarray, names: Sequence[str]) -> pd.DataFrame:
        """The columns ``names`` of the rows at ``index`` (integers as int64, text as pandas strings)."""
        taken = self.batch.select(list(names)).take(pa.array(index))
        return taken.to_pandas(types_mapper=_PANDAS_STRINGS)


def read_blocks(
    path: Path,
    integer_columns: Sequence[str],
    other_columns: Sequence[str] = (),
    optional_columns: Sequence[str] = (),
    names: Sequence[str] | None = None,
    block_bytes: int = BLOCK_BYTES,
) -> Iterator[Block]:
    """:func:`read_csv` for files of any size, one :class:`Block` at a time, so memory holds one block of
    text at a time. The checks and errors are :func:`read_csv`'s."""
    cols = _columns(path, integer_columns, other_columns, optional_columns, names)
    types = {c: pa.int64() if c in cols.integer else pa.string() for c in cols.usecols}
    reader_options = pacsv.ReadOptions(column_names=list(names) if names else None, block_size=block_bytes, use_threads=False)
    convert = pacsv.ConvertOptions(column_types=types, include_columns=cols.usecols, strings_can_be_null=True)
    offset = 0
    try:
        for batch in pacsv.open_csv(path, read_options=reader_options, convert_options=convert):
            if any(batch.column(c).null_count for c in cols.integer):
                raise ValueError("an empty integer cell")  # pandas' int64 refuses these too: diagnosed below
            yield Block(offset, batch)
            offset += batch.num_rows
    except (pa.ArrowInvalid, ValueError):  # a bad cell in the block after ``offset`` rows: name it
        _diagnose(cols, offset)
        raise
    pa.default_memory_pool().release_unused()  # the pool keeps freed blocks' pages otherwise (~1 GB for Tmall)
    if offset == 0:
        raise BenchError(f"{path}: the file has a header but no rows")


def _diagnose(cols: _Columns, skip: int) -> None:
    """Slow path: read every cell as text, from row ``skip`` on, and raise naming the first cell that is
    not a whole number or the first line that is not CSV. Returns only if it finds nothing wrong."""
    kwargs = dict(cols.pandas_kwargs(), dtype="string", chunksize=1 << 20)
    if skip:
        kwargs["skiprows"] = range(1, skip + 1) if cols.header else skip
    offset = skip
    try:
        for raw in pd.read_csv(cols.path, **kwargs):
            for column in cols.integer:
                text = raw[column].str.strip()
                values = pd.to_numeric(text, errors="coerce")
                bad = values.isna() | (values != values.round())
                if bad.any():
                    i = int(np.flatnonzero(bad.to_numpy())[0])
                    cell = "" if pd.isna(raw[column].iloc[i]) else raw[column].iloc[i]
                    what = "an empty cell" if cell == "" else f"'{cell}', not a whole number"
                    raise BenchError(f"{cols.path}: line {_line_of(offset + i, cols.header)}: column '{column}' has {what}")
            offset += len(raw)
    except pd.errors.ParserError as err:
        raise BenchError(f"{cols.path}: not a readable CSV file ({str(err).splitlines()[0]})") from None
    except UnicodeDecodeError:
        raise BenchError(f"{cols.path}: not a readable CSV file (not UTF-8 text)") from None


def map_behaviors(codes: pd.Series, mapping: Mapping, path: Path, column: str, header: bool = True, offset: int = 0) -> np.ndarray:
    """Map raw behavior codes to canonical int8 codes; an unknown code names its line (``offset``: the
    file row of the block's first row)."""
    index = {raw: BEHAVIORS.index(name) for raw, name in mapping.items()}
    codes = pd.Series(codes, copy=False)
    values = codes.str.strip() if codes.dtype == "string" else codes
    found, distinct = pd.factorize(values)  # a handful of distinct codes: map those, not every row
    table = np.array([index.get(v, -1) for v in distinct] + [-1], dtype=np.int8)  # the last: NA (-1)
    mapped = table[found]
    unknown = mapped < 0
    if unknown.any():
        i = int(np.flatnonzero(unknown)[0])
        expected = "/".join(str(k) for k in mapping)
        raise BenchError(
            f"{path}: line {_line_of(offset + i, header)}: unknown behavior '{codes.iloc[i]}' in column '{column}' "
            f"(expected one of {expected})"
        )
    return mapped


def parse_timestamps(values: pd.Series, path: Path, column: str, header: bool = True, offset: int = 0) -> np.ndarray:
    """(N,) float64 unix seconds from integers or ISO-8601 strings; the first unparsable cell names its line.
    Floats, so a value beyond the 64-bit range stays visible to :class:`TimestampWindow` instead of wrapping."""
    text = values.astype("string").str.strip()
    numbers = pd.to_numeric(text, errors="coerce")
    whole = (numbers.notna() & (numbers == numbers.round())).to_numpy(dtype=bool, na_value=False)
    if whole.all():
        return numbers.to_numpy(dtype="float64", na_value=np.nan)
    dates = pd.to_datetime(text.where(~whole), errors="coerce", format="ISO8601", utc=True)
    parsed = whole | dates.notna().to_numpy()
    if not parsed.all():
        i = int(np.flatnonzero(~parsed)[0])
        raise BenchError(
            f"{path}: line {_line_of(offset + i, header)}: unparsable timestamp '{values.iloc[i]}' in column "
            f"'{column}' (expected unix seconds or an ISO-8601 date)"
        )
    from_dates = ((dates - pd.Timestamp(0, tz="UTC")) // pd.Timedelta(seconds=1)).to_numpy(dtype="float64", na_value=np.nan)
    return np.where(whole, numbers.to_numpy(dtype="float64", na_value=np.nan), from_dates)


def _narrow(values: np.ndarray) -> np.ndarray:
    """int32 when every value fits, else int64 (ids and unix seconds of the public logs fit in int32)."""
    info = np.iinfo(np.int32)
    if len(values) == 0 or (values.min() >= info.min and values.max() <= info.max):
        return values.astype(np.int32, copy=False)
    return values.astype(np.int64, copy=False)


class _Blocks:
    """A log's interactions gathered block by block in narrow dtypes, and the first row of every item
    (the only rows whose feature strings are kept)."""

    def __init__(self, item_key: str, feature_columns: Sequence[str]) -> None:
        self.parts: dict[str, list[np.ndarray]] = {name: [] for name in INTERACTION_COLUMNS}
        self.rows = 0
        self.item_key, self.feature_columns = item_key, list(feature_columns)
        self.first_rows: list[pd.DataFrame] = []
        self.bitmap: np.ndarray | None = np.zeros(0, dtype=bool)
        self.seen = pd.Index([], dtype=np.int64)

    def add(self, block: Block, behavior: np.ndarray, seconds: np.ndarray, keep: np.ndarray) -> None:
        """One block: rows outside ``keep`` are left out (their positions stay gaps in ``order``), but still
        count for the items' first rows, as a whole-file read would."""
        order = np.arange(block.offset, block.offset + len(block), dtype=np.int64)
        user, item = block.ints("user_id"), block.ints(self.item_key)
        columns = (user[keep], item[keep], behavior[keep], seconds[keep].astype(np.int64), order[keep])
        for name, values in zip(INTERACTION_COLUMNS, columns):
            self.parts[name].append(values if name == "behavior" else _narrow(values))
        self.rows += len(block)
        first = np.flatnonzero(~pd.Series(item, copy=False).duplicated().to_numpy())  # each item's first row here …
        first = first[~self._seen(item[first])]  # … unless an earlier block had it
        if len(first):
            self.first_rows.append(block.rows(first, [self.item_key, *self.feature_columns]))

    def _seen(self, items: np.ndarray) -> np.ndarray:
        """(N,) bool: which of these distinct items earlier blocks had; records them as seen. A bitmap over
        the ids when they are small non-negative integers (the public logs'), else a hash lookup."""
        if self.bitmap is not None and items.min() >= 0 and items.max() < 2**28:
            if items.max() >= len(self.bitmap):
                self.bitmap = np.concatenate([self.bitmap, np.zeros(int(items.max()) + 1 - len(self.bitmap), dtype=bool)])
            out = self.bitmap[items]
            self.bitmap[items] = True
            return out
        if self.bitmap is not None:  # ids outside the bitmap's reach: move to the hash lookup for good
            self.seen, self.bitmap = pd.Index(np.flatnonzero(self.bitmap)), None
        out = pd.Index(items).isin(self.seen)
        self.seen = self.seen.append(pd.Index(items[~out]))
        return out

    def interactions(self) -> pd.DataFrame:
        """The canonical interaction table (``order``: the row's position in the file, the tie-breaker).
        Each column is joined and its blocks freed before the next, so the peak is one column over the total."""
        out = {}
        for name in INTERACTION_COLUMNS:
            parts = self.parts.pop(name)
            out[name] = np.concatenate(parts)
            parts.clear()
            if name != "behavior":
                out[name] = _narrow(out[name])
        return pd.DataFrame(out, copy=False)

    def items(self) -> pd.DataFrame:
        return pd.concat(self.first_rows, ignore_index=True) if self.first_rows else pd.DataFrame(columns=[self.item_key])


def _interactions(users: pd.Series, items: pd.Series, behavior: np.ndarray, timestamp: np.ndarray, keep: np.ndarray) -> pd.DataFrame:
    """The canonical interaction table; ``order`` is the row's position in the file (the tie-breaker), so
    rows dropped by ``keep`` leave gaps rather than renumber the rest."""
    frame = pd.DataFrame(
        {
            "user": users.to_numpy(),
            "item": items.to_numpy(),
            "behavior": behavior,
            "timestamp": np.where(keep, timestamp, 0).astype(np.int64),
            "order": np.arange(len(behavior), dtype=np.int64),
        }
    )
    return frame[keep].reset_index(drop=True) if not keep.all() else frame


def _log(interactions: pd.DataFrame, n_rows: int, items: pd.DataFrame, users: pd.DataFrame, source: str,
         coverage: Mapping[str, float] | None = None, warnings: Sequence[str] = ()) -> Log:  # fmt: skip
    preparation = {"dropped": {"bad_timestamps": n_rows - len(interactions)}, "coverage": dict(coverage or {}),
                   "warnings": list(warnings)}  # fmt: skip
    return Log(interactions, items, users, source, preparation)


def _feature_table(frame: pd.DataFrame, key: str, columns: Sequence[str]) -> pd.DataFrame:
    """One row per id (first occurrence wins) with integer-coded features; unknown values become -1."""
    table = frame.drop_duplicates(key).set_index(key)
    out = pd.DataFrame(index=pd.Index(table.index.to_numpy(), name=key))
    for column in columns:
        if column in table.columns:
            codes, _ = pd.factorize(table[column].astype("string").str.strip().replace("", pd.NA))
            out[column] = codes.astype(np.int64)  # NA → -1 by factorize
    return out


def _empty_features(key: str) -> pd.DataFrame:
    return pd.DataFrame(index=pd.Index([], name=key))


# --------------------------------------------------------------------------------------- formats


def load_tmall(path: Path, checks: DataChecks = DataChecks(), block_bytes: int = BLOCK_BYTES) -> Log:
    """IJCAI-15 Tmall "repeat buyers" log: ``user_log_format1.csv`` (and ``user_info_format1.csv``).

    Columns user_id, item_id, cat_id, seller_id, brand_id, time_stamp (mmdd of 2015), action_type
    (0 click, 1 add-to-cart, 2 purchase, 3 add-to-favourite). ``path`` is the log file or its folder;
    age_range and gender are read from ``user_info_format1.csv`` beside it when that file exists. A missing
    feature column or user file is a warning (the semantic IDs then use fewer features), not an error.
    """
    file = path / TMALL_LOG if path.is_dir() else path
    optional = ("cat_id", "seller_id", "brand_id")
    blocks = None
    window = TimestampWindow(file, "time_stamp", checks)
    for block in read_blocks(file, ("user_id", "item_id", "time_stamp", "action_type"), (), optional, block_bytes=block_bytes):
        if blocks is None:
            blocks = _Blocks("item_id", [c for c in optional if c in block.columns])
        behavior = map_behaviors(block.ints("action_type"), TMALL_ACTIONS, file, "action_type", offset=block.offset)
        mmdd = block.ints("time_stamp")
        seconds = _mmdd_seconds(mmdd, file, block.offset)
        blocks.add(block, behavior, seconds, window.keep(seconds, mmdd, block.offset))
    window.finish()
    assert blocks is not None  # read_blocks refuses a file without rows
    warnings = [f"{file}: no column '{c}': items get no {c.removesuffix('_id')} feature" for c in optional
                if c not in blocks.feature_columns]  # fmt: skip
    interactions = blocks.interactions()
    firsts = blocks.items().rename(columns={"cat_id": "category", "seller_id": "seller", "brand_id": "brand"})
    items = _feature_table(firsts, "item_id", ("category", "brand", "seller"))
    users = _empty_features("user_id")
    info = file.parent / TMALL_USERS
    coverage = {}
    if info.exists():
        table = read_csv(info, integer_columns=("user_id",), optional_columns=("age_range", "gender"))
        users = _feature_table(table, "user_id", ("age_range", "gender"))
        coverage[TMALL_USERS] = _coverage(info, users.index, interactions["user"], checks)
    else:
        warnings.append(f"{info}: not found: users get no age or gender feature")
    return _log(interactions, blocks.rows, items, users, str(file), coverage, warnings)


def _mmdd_seconds(mmdd: np.ndarray, file: Path, offset: int) -> np.ndarray:
    """(N,) float64 unix seconds of Tmall's mmdd day stamps (of 2015), parsed once per distinct value."""
    values, inverse = np.unique(mmdd, return_inverse=True)
    dates = pd.to_datetime(pd.Series(20150000 + values).astype(str), format="%Y%m%d", errors="coerce")
    if dates.isna().any():
        i = int(np.flatnonzero(np.isin(mmdd, values[dates.isna().to_numpy()]))[0])
        raise BenchError(f"{file}: line {offset + i + 2}: unparsable timestamp '{mmdd[i]}' in column 'time_stamp' (expected mmdd)")
    return ((dates - pd.Timestamp(0)) // pd.Timedelta(seconds=1)).to_numpy(dtype=np.float64)[inverse]


def load_taobao(path: Path, checks: DataChecks = DataChecks(), block_bytes: int = BLOCK_BYTES) -> Log:
    """Taobao ``UserBehavior.csv``: no header; user, item, category, behavior (pv/buy/cart/fav), unix ts."""
    file = path / TAOBAO_LOG if path.is_dir() else path
    names = ["user_id", "item_id", "category", "behavior", "timestamp"]
    blocks = _Blocks("item_id", ["category"])
    window = TimestampWindow(file, "timestamp", checks, header=False)
    for block in read_blocks(file, ("user_id", "item_id"), ("category", "behavior", "timestamp"), names=names,
                             block_bytes=block_bytes):  # fmt: skip
        behavior = map_behaviors(block.strings("behavior"), TAOBAO_ACTIONS, file, "behavior", header=False, offset=block.offset)
        raw = block.strings("timestamp")
        seconds = parse_timestamps(raw, file, "timestamp", header=False, offset=block.offset)
        blocks.add(block, behavior, seconds, window.keep(seconds, raw, block.offset))
    window.finish()
    items = _feature_table(blocks.items(), "item_id", ("category",))
    return _log(blocks.interactions(), blocks.rows, items, _empty_features("user_id"), str(file))


def load_csv(path: Path, checks: DataChecks = DataChecks()) -> Log:
    """The canonical folder: ``interactions.csv`` (user_id, item_id, behavior, timestamp) and optional
    ``items.csv`` (item_id + feature columns) and ``users.csv`` (user_id + feature columns).

    ``behavior`` is one of click/fav/cart/buy; ``timestamp`` is unix seconds or an ISO-8601 date. A side
    file that describes too few of the log's ids (``checks.min_feature_coverage``) is an error.
    """
    file = _canonical_file(path)
    folder = file.parent
    frame = read_csv(file, integer_columns=(), other_columns=("user_id", "item_id", "behavior", "timestamp"))
    for column in ("user_id", "item_id"):
        empty = frame[column].isna() | (frame[column].str.strip() == "")
        if empty.any():
            i = int(np.flatnonzero(empty.to_numpy())[0])
            raise BenchError(f"{file}: line {i + 2}: column '{column}' has an empty cell")
    behavior = map_behaviors(frame["behavior"], CANONICAL_ACTIONS, file, "behavior")
    seconds = parse_timestamps(frame["timestamp"], file, "timestamp")
    window = TimestampWindow(file, "timestamp", checks)
    keep = window.keep(seconds, frame["timestamp"])
    window.finish()
    interactions = _interactions(frame["user_id"].str.strip(), frame["item_id"].str.strip(), behavior, seconds, keep)
    coverage = {}
    items = _optional_features(folder / "items.csv", "item_id")
    users = _optional_features(folder / "users.csv", "user_id")
    for side, table, key in (("items.csv", items, "item"), ("users.csv", users, "user")):
        if (folder / side).exists():
            coverage[side] = _coverage(folder / side, table.index, interactions[key], checks)
    return _log(interactions, len(frame), items, users, str(file), coverage)


def _canonical_file(path: Path) -> Path:
    """``interactions.csv`` of a folder (or the file given); a compressed copy is named, since it is not read."""
    file = path / "interactions.csv" if path.is_dir() else path
    if not file.exists():
        packed = [p.name for p in file.parent.glob(file.name + ".*")] if file.parent.is_dir() else []
        if packed:
            raise BenchError(f"{file}: no such file ({', '.join(packed)} is there: decompress it first)")
    return file


def _coverage(file: Path, described: pd.Index, ids: pd.Series, checks: DataChecks) -> float:
    """Share of the log's distinct ids that ``file`` describes; below ``checks.min_feature_coverage`` the
    file is surely not about this log (other ids, another id column), and that is an error."""
    distinct = pd.Index(pd.unique(ids.to_numpy())).astype(str)  # distinct first: 424k strings, not 55M
    share = float(distinct.isin(described.astype(str)).mean()) if len(distinct) else 1.0
    if share < checks.min_feature_coverage:
        raise BenchError(
            f"{file}: describes {100 * share:.1f}% of the log's {len(distinct):,} ids (at least "
            f"{100 * checks.min_feature_coverage:.0f}% expected: are they the same ids as the log's?)"
        )
    return round(share, 6)


def _optional_features(file: Path, key: str) -> pd.DataFrame:
    if not file.exists():
        return _empty_features(key)
    _require_file(file)
    try:
        head = pd.read_csv(file, nrows=0)
    except pd.errors.EmptyDataError:
        raise BenchError(f"{file}: the file is empty (delete it, or give it a '{key}' column and rows)") from None
    features = [c for c in head.columns if c != key]
    table = read_csv(file, integer_columns=(), other_columns=(key,), optional_columns=features)
    table[key] = table[key].str.strip()
    return _feature_table(table, key, features)


Loader = Callable[..., Log]
LOADERS: dict[str, Loader] = {"tmall": load_tmall, "taobao": load_taobao, "csv": load_csv}


def load(fmt: str, path: str | Path | None, synthetic: Mapping[str, object] | None = None,
         checks: DataChecks = DataChecks()) -> Log:  # fmt: skip
    """Load a log by format name. ``synthetic`` needs no path; every other format does."""
    if fmt == "synthetic":
        from bench.data.synthetic import SyntheticConfig, generate

        return generate(SyntheticConfig(**(synthetic or {})))
    if fmt not in LOADERS:
        raise BenchError(f"unknown data format '{fmt}' (known: synthetic, {', '.join(LOADERS)})")
    if path is None:
        raise BenchError(f"format '{fmt}' needs --data PATH (a file or folder)")
    return LOADERS[fmt](Path(path), checks)
