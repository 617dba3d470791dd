"""Readers for the supported log formats, each returning a validated :class:`~bench.data.log.Log`.

Every reader takes the fast path first (pyarrow's CSV engine with explicit dtypes: 1M rows in about a
second) and, only when that fails, a slow diagnostic pass that names the first bad line and column, so a
user with a broken 55M-row file is told exactly where to look.
"""

from __future__ import annotations

import datetime
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from bench.data.log import BEHAVIORS, Log
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


def check_timestamps(seconds: np.ndarray, raw: pd.Series, file: Path, column: str, checks: DataChecks,
                     header: bool = True) -> np.ndarray:  # fmt: skip
    """(N,) bool rows to keep: every timestamp inside the checks' window, or an error naming the first that
    is not (with ``bad_timestamps: drop``, the rows outside are left out instead)."""
    low, high = checks.window(file)
    bad = ~np.isfinite(seconds) | (seconds < low) | (seconds > high)
    if bad.any() and checks.bad_timestamps == "error":
        i = int(np.flatnonzero(bad)[0])
        when = "beyond the 64-bit range" if abs(seconds[i]) >= 2.0**63 else f"at {_date(seconds[i], time=True)}"
        raise BenchError(
            f"{file}: line {_line_of(i, header)}: timestamp '{raw.iloc[i]}' in column '{column}' is {when}, outside "
            f"{_date(low)} .. {_date(high)} ({int(bad.sum())} such "
            "row(s); 'checks: {bad_timestamps: drop}' in the dataset config drops them, earliest/latest widen the window)"
        )
    return ~bad


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


def read_csv(
    path: Path,
    integer_columns: Sequence[str],
    other_columns: Sequence[str] = (),
    optional_columns: Sequence[str] = (),
    names: Sequence[str] | None = None,
) -> pd.DataFrame:
    """Read a CSV whose ``integer_columns`` must be whole numbers, with a precise error otherwise.

    Args:
        path: the file.
        integer_columns: required columns parsed as int64; an empty or non-integer cell is an error.
        other_columns: required columns kept as strings.
        optional_columns: columns kept as strings when present.
        names: column names for a file without a header row (then every column is required).
    """
    _require_file(path)
    header = names is None
    wanted = [*integer_columns, *other_columns]
    if names is not None:  # a headerless format: the column count is the only schema there is
        with open(path, encoding="utf-8", errors="replace") as fh:
            first = fh.readline().rstrip("\r\n")
        if first and first.count(",") + 1 != len(names):
            raise BenchError(f"{path}: line 1 has {first.count(',') + 1} columns, expected {len(names)} ({', '.join(names)})")
    try:
        head = pd.read_csv(path, nrows=0, header=0 if header else None, names=names)
    except pd.errors.EmptyDataError:
        raise BenchError(f"{path}: the file is empty") from None
    except (UnicodeDecodeError, pd.errors.ParserError) as err:
        raise BenchError(f"{path}: not a readable CSV file ({str(err).splitlines()[0]})") from None
    columns = [str(c).strip() for c in head.columns]
    missing = [c for c in wanted if c not in columns]
    if missing:
        raise BenchError(f"{path}: missing column(s) {', '.join(missing)} (found: {', '.join(columns)})")
    usecols = wanted + [c for c in optional_columns if c in columns]
    dtype = {c: "int64" for c in integer_columns} | {c: "string" for c in usecols if c not in integer_columns}
    # pyarrow mislabels usecols when names are given; a headerless file is read whole (all required).
    kwargs = dict(header=0 if header else None, names=names, usecols=usecols if header else None, dtype=dtype)
    try:
        frame = pd.read_csv(path, engine="pyarrow", **kwargs)
    except Exception:  # noqa: BLE001 - any failure of the fast path is diagnosed precisely below
        frame = _diagnose(path, integer_columns, header, kwargs)
    if len(frame) == 0:
        raise BenchError(f"{path}: the file has a header but no rows")
    return frame


def _diagnose(path: Path, integer_columns: Sequence[str], header: bool, kwargs: dict) -> pd.DataFrame:
    """Slow path: read every cell as text and report the first cell that is not a whole number."""
    kwargs = dict(kwargs, dtype="string")
    try:
        raw = pd.read_csv(path, **kwargs)
    except pd.errors.ParserError as err:
        raise BenchError(f"{path}: not a readable CSV file ({str(err).splitlines()[0]})") from None
    except UnicodeDecodeError:
        raise BenchError(f"{path}: not a readable CSV file (not UTF-8 text)") from None
    for column in integer_columns:
        text = raw[column].str.strip()
        values = pd.to_numeric(text, errors="coerce")
        bad = values.isna() | (values != values.round())
        if bad.any():
            i = int(np.flatnonzero(bad.to_numpy())[0])
            cell = "" if pd.isna(raw[column].iloc[i]) else raw[column].iloc[i]
            what = "an empty cell" if cell == "" else f"'{cell}', not a whole number"
            raise BenchError(f"{path}: line {_line_of(i, header)}: column '{column}' has {what}")
        raw[column] = values.astype("int64")
    return raw


def map_behaviors(codes: pd.Series, mapping: Mapping, path: Path, column: str, header: bool = True) -> np.ndarray:
    """Map raw behavior codes to canonical int8 codes; an unknown code names its line."""
    index = {raw: BEHAVIORS.index(name) for raw, name in mapping.items()}
    values = codes.str.strip() if codes.dtype == "string" else codes
    mapped = values.map(index)
    unknown = mapped.isna().to_numpy()
    if unknown.any():
        i = int(np.flatnonzero(unknown)[0])
        expected = "/".join(str(k) for k in mapping)
        raise BenchError(
            f"{path}: line {_line_of(i, header)}: unknown behavior '{codes.iloc[i]}' in column '{column}' "
            f"(expected one of {expected})"
        )
    return mapped.to_numpy().astype(np.int8)


def parse_timestamps(values: pd.Series, path: Path, column: str, header: bool = True) -> np.ndarray:
    """(N,) float64 unix seconds from integers or ISO-8601 strings; the first unparsable cell names its line.
    Floats, so a value beyond the 64-bit range stays visible to :func:`check_timestamps` instead of wrapping."""
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
            f"{path}: line {_line_of(i, header)}: unparsable timestamp '{values.iloc[i]}' in column "
            f"'{column}' (expected unix seconds or an ISO-8601 date)"
        )
    from_dates = ((dates - pd.Timestamp(0, tz="UTC")) // pd.Timedelta(seconds=1)).to_numpy(dtype="float64", na_value=np.nan)
    return np.where(whole, numbers.to_numpy(dtype="float64", na_value=np.nan), from_dates)


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


def load_tmall(path: Path, checks: DataChecks = DataChecks()) -> Log:
    """IJCAI-15 Tmall "repeat buyers" log: ``user_log_format1.csv`` (and ``user_info_format1.csv``).

    Columns user_id, item_id, cat_id, seller_id, brand_id, time_stamp (mmdd of 2015), action_type
    (0 click, 1 add-to-cart, 2 purchase, 3 add-to-favourite). ``path`` is the log file or its folder;
    age_range and gender are read from ``user_info_format1.csv`` beside it when that file exists. A missing
    feature column or user file is a warning (the semantic IDs then use fewer features), not an error.
    """
    file = path / TMALL_LOG if path.is_dir() else path
    optional = ("cat_id", "seller_id", "brand_id")
    frame = read_csv(file, integer_columns=("user_id", "item_id", "time_stamp", "action_type"), optional_columns=optional)
    warnings = [f"{file}: no column '{c}': items get no {c.removesuffix('_id')} feature" for c in optional if c not in frame.columns]
    behavior = map_behaviors(frame["action_type"], TMALL_ACTIONS, file, "action_type")
    mmdd = frame["time_stamp"].to_numpy()
    dates = pd.to_datetime(pd.Series(20150000 + mmdd).astype(str), format="%Y%m%d", errors="coerce")
    if dates.isna().any():
        i = int(np.flatnonzero(dates.isna().to_numpy())[0])
        raise BenchError(f"{file}: line {i + 2}: unparsable timestamp '{mmdd[i]}' in column 'time_stamp' (expected mmdd)")
    seconds = ((dates - pd.Timestamp(0)) // pd.Timedelta(seconds=1)).to_numpy(dtype=np.float64)
    keep = check_timestamps(seconds, frame["time_stamp"], file, "time_stamp", checks)
    interactions = _interactions(frame["user_id"], frame["item_id"], behavior, seconds, keep)
    frame = frame.rename(columns={"cat_id": "category", "seller_id": "seller", "brand_id": "brand"})
    items = _feature_table(frame, "item_id", ("category", "brand", "seller"))
    users = _empty_features("user_id")
    info = file.parent / TMALL_USERS
    coverage = {}
    if info.exists():
        table = read_csv(info, integer_columns=("user_id",), optional_columns=("age_range", "gender"))
        users = _feature_table(table, "user_id", ("age_range", "gender"))
        coverage[TMALL_USERS] = _coverage(info, users.index, interactions["user"], checks)
    else:
        warnings.append(f"{info}: not found: users get no age or gender feature")
    return _log(interactions, len(frame), items, users, str(file), coverage, warnings)


def load_taobao(path: Path, checks: DataChecks = DataChecks()) -> Log:
    """Taobao ``UserBehavior.csv``: no header; user, item, category, behavior (pv/buy/cart/fav), unix ts."""
    file = path / TAOBAO_LOG if path.is_dir() else path
    names = ["user_id", "item_id", "category", "behavior", "timestamp"]
    frame = read_csv(
        file,
        integer_columns=("user_id", "item_id"),
        other_columns=("category", "behavior", "timestamp"),
        names=names,
    )
    behavior = map_behaviors(frame["behavior"], TAOBAO_ACTIONS, file, "behavior", header=False)
    seconds = parse_timestamps(frame["timestamp"], file, "timestamp", header=False)
    keep = check_timestamps(seconds, frame["timestamp"], file, "timestamp", checks, header=False)
    interactions = _interactions(frame["user_id"], frame["item_id"], behavior, seconds, keep)
    items = _feature_table(frame, "item_id", ("category",))
    return _log(interactions, len(frame), items, _empty_features("user_id"), str(file))


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
    keep = check_timestamps(seconds, frame["timestamp"], file, "timestamp", checks)
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
    distinct = pd.Index(ids.astype(str).unique())
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
