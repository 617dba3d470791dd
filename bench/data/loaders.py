"""Readers for the supported log formats, each returning a validated :class:`~bench.data.log.Log`.

Every reader takes the fast path first (pyarrow's CSV engine with explicit dtypes: 1M rows in about a
second) and, only when that fails, a slow diagnostic pass that names the first bad line and column, so a
user with a broken 55M-row file is told exactly where to look.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from bench.data.log import BEHAVIORS, Log
from bench.errors import BenchError

# Raw behavior codes of each format, mapped onto the canonical vocabulary.
TMALL_ACTIONS: Mapping[int, str] = {0: "click", 1: "cart", 2: "buy", 3: "fav"}
TAOBAO_ACTIONS: Mapping[str, str] = {"pv": "click", "fav": "fav", "cart": "cart", "buy": "buy"}
CANONICAL_ACTIONS: Mapping[str, str] = {b: b for b in BEHAVIORS}

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
    """Unix seconds from integers or ISO-8601 strings; the first unparsable cell names its line."""
    text = values.astype("string").str.strip()
    numbers = pd.to_numeric(text, errors="coerce")
    whole = (numbers.notna() & (numbers == numbers.round())).to_numpy(dtype=bool, na_value=False)
    if whole.all():
        return numbers.to_numpy().astype(np.int64)
    dates = pd.to_datetime(text.where(~whole), errors="coerce", format="ISO8601", utc=True)
    parsed = whole | dates.notna().to_numpy()
    if not parsed.all():
        i = int(np.flatnonzero(~parsed)[0])
        raise BenchError(
            f"{path}: line {_line_of(i, header)}: unparsable timestamp '{values.iloc[i]}' in column "
            f"'{column}' (expected unix seconds or an ISO-8601 date)"
        )
    from_dates = ((dates - pd.Timestamp(0, tz="UTC")) // pd.Timedelta(seconds=1)).to_numpy(dtype="float64", na_value=np.nan)
    return np.where(whole, numbers.to_numpy(dtype="float64", na_value=np.nan), from_dates).astype(np.int64)


def _interactions(users: pd.Series, items: pd.Series, behavior: np.ndarray, timestamp: np.ndarray) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "user": users.to_numpy(),
            "item": items.to_numpy(),
            "behavior": behavior,
            "timestamp": timestamp,
            "order": np.arange(len(behavior), dtype=np.int64),
        }
    )


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


def load_tmall(path: Path) -> Log:
    """IJCAI-15 Tmall "repeat buyers" log: ``user_log_format1.csv`` (and ``user_info_format1.csv``).

    Columns user_id, item_id, cat_id, seller_id, brand_id, time_stamp (mmdd of 2015), action_type
    (0 click, 1 add-to-cart, 2 purchase, 3 add-to-favourite). ``path`` is the log file or its folder;
    age_range and gender are read from ``user_info_format1.csv`` beside it when that file exists.
    """
    file = path / TMALL_LOG if path.is_dir() else path
    frame = read_csv(
        file,
        integer_columns=("user_id", "item_id", "time_stamp", "action_type"),
        optional_columns=("cat_id", "seller_id", "brand_id"),
    )
    behavior = map_behaviors(frame["action_type"], TMALL_ACTIONS, file, "action_type")
    mmdd = frame["time_stamp"].to_numpy()
    dates = pd.to_datetime(pd.Series(20150000 + mmdd).astype(str), format="%Y%m%d", errors="coerce")
    if dates.isna().any():
        i = int(np.flatnonzero(dates.isna().to_numpy())[0])
        raise BenchError(f"{file}: line {i + 2}: unparsable timestamp '{mmdd[i]}' in column 'time_stamp' (expected mmdd)")
    seconds = ((dates - pd.Timestamp(0)) // pd.Timedelta(seconds=1)).to_numpy(dtype=np.int64)
    interactions = _interactions(frame["user_id"], frame["item_id"], behavior, seconds)
    frame = frame.rename(columns={"cat_id": "category", "seller_id": "seller", "brand_id": "brand"})
    items = _feature_table(frame, "item_id", ("category", "brand", "seller"))
    users = _empty_features("user_id")
    info = file.parent / TMALL_USERS
    if info.exists():
        table = read_csv(info, integer_columns=("user_id",), optional_columns=("age_range", "gender"))
        users = _feature_table(table, "user_id", ("age_range", "gender"))
    return Log(interactions, items, users, str(file))


def load_taobao(path: Path) -> Log:
    """Taobao ``UserBehavior.csv``: no header; user, item, category, behavior (pv/buy/cart/fav), unix ts."""
    file = path / TAOBAO_LOG if path.is_dir() else path
    names = ["user_id", "item_id", "category", "behavior", "timestamp"]
    frame = read_csv(
        file,
        integer_columns=("user_id", "item_id", "timestamp"),
        other_columns=("category", "behavior"),
        names=names,
    )
    behavior = map_behaviors(frame["behavior"], TAOBAO_ACTIONS, file, "behavior", header=False)
    interactions = _interactions(frame["user_id"], frame["item_id"], behavior, frame["timestamp"].to_numpy())
    items = _feature_table(frame, "item_id", ("category",))
    return Log(interactions, items, _empty_features("user_id"), str(file))


def load_csv(path: Path) -> Log:
    """The canonical folder: ``interactions.csv`` (user_id, item_id, behavior, timestamp) and optional
    ``items.csv`` (item_id + feature columns) and ``users.csv`` (user_id + feature columns).

    ``behavior`` is one of click/fav/cart/buy; ``timestamp`` is unix seconds or an ISO-8601 date.
    """
    file = path / "interactions.csv" if path.is_dir() else path
    folder = file.parent
    frame = read_csv(file, integer_columns=(), other_columns=("user_id", "item_id", "behavior", "timestamp"))
    for column in ("user_id", "item_id"):
        empty = frame[column].isna() | (frame[column].str.strip() == "")
        if empty.any():
            i = int(np.flatnonzero(empty.to_numpy())[0])
            raise BenchError(f"{file}: line {i + 2}: column '{column}' has an empty cell")
    behavior = map_behaviors(frame["behavior"], CANONICAL_ACTIONS, file, "behavior")
    timestamp = parse_timestamps(frame["timestamp"], file, "timestamp")
    interactions = _interactions(frame["user_id"].str.strip(), frame["item_id"].str.strip(), behavior, timestamp)
    items = _optional_features(folder / "items.csv", "item_id")
    users = _optional_features(folder / "users.csv", "user_id")
    return Log(interactions, items, users, str(file))


def _optional_features(file: Path, key: str) -> pd.DataFrame:
    if not file.exists():
        return _empty_features(key)
    head = pd.read_csv(file, nrows=0)
    features = [c for c in head.columns if c != key]
    table = read_csv(file, integer_columns=(), other_columns=(key,), optional_columns=features)
    table[key] = table[key].str.strip()
    return _feature_table(table, key, features)


Loader = Callable[..., Log]
LOADERS: dict[str, Loader] = {"tmall": load_tmall, "taobao": load_taobao, "csv": load_csv}


def load(fmt: str, path: str | Path | None, synthetic: Mapping[str, object] | None = None) -> Log:
    """Load a log by format name. ``synthetic`` needs no path; every other format does."""
    if fmt == "synthetic":
        from bench.data.synthetic import SyntheticConfig, generate

        return generate(SyntheticConfig(**(synthetic or {})))
    if fmt not in LOADERS:
        raise BenchError(f"unknown data format '{fmt}' (known: synthetic, {', '.join(LOADERS)})")
    if path is None:
        raise BenchError(f"format '{fmt}' needs --data PATH (a file or folder)")
    return LOADERS[fmt](Path(path))
