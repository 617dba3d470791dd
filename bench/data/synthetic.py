"""A deterministic, Tmall-like multi-behavior log: the embedded default that needs no download.

The generator writes sessions. Most sessions are noisy browsing (clicks on popular items across
categories); some are focused: a coherent cluster of clicks on items of one category, biased towards one
brand, with favourites and add-to-carts, and a few of those end in a purchase. As in the real logs
(``data stats`` on ../shared/data shows about 80%), most purchased items were clicked, favourited or carted
earlier in the cluster; the rest are new items of the same category and brand. This is the structure of
the RCLRec paper's Figure 1(c): a conversion is preceded by related interactions inside a noisy history.
Item popularity follows a Zipf law, and users' category tastes correlate with their (gender, age) features,
so both sequence models and feature-aware models have signal to find, and popularity is a weak floor.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from bench.data.log import BEHAVIORS, Log

CLICK, FAV, CART, BUY = (BEHAVIORS.index(b) for b in ("click", "fav", "cart", "buy"))
DAY = 86_400


@dataclass(frozen=True)
class SyntheticConfig:
    """Size and shape knobs. The defaults give ~100k rows with ~1% conversions in about a second."""

    n_users: int = 1500
    n_items: int = 3000
    n_categories: int = 40
    brands_per_category: int = 6
    n_sellers: int = 200
    sessions_per_user: float = 14.0
    """Mean number of sessions per user (Poisson, at least 2)."""
    focused_share: float = 0.5
    """Share of sessions that are a coherent cluster in one category; the rest are noise."""
    convert_prob: float = 0.12
    """Probability that a focused session ends in a purchase; sets the conversion share (~1%)."""
    repeat_buy_share: float = 0.8
    """Share of purchases of an item already interacted with in the cluster."""
    delayed_buy_share: float = 0.5
    """Share of purchases made in a later session (the user comes back), after unrelated browsing."""
    zipf_exponent: float = 1.05
    seed: int = 0


def _zipf(n: int, exponent: float, rng: np.random.Generator) -> np.ndarray:
    weights = 1.0 / np.arange(1, n + 1) ** exponent
    return rng.permutation(weights / weights.sum())


def generate(cfg: SyntheticConfig = SyntheticConfig()) -> Log:
    """Generate the log. Same config (seed included) → identical log, on any machine."""
    rng = np.random.default_rng(cfg.seed)

    # Items: category (Zipf over categories), brand nested in the category, seller; Zipf popularity.
    category = rng.choice(cfg.n_categories, size=cfg.n_items, p=_zipf(cfg.n_categories, 0.8, rng))
    brand = category * cfg.brands_per_category + rng.integers(0, cfg.brands_per_category, cfg.n_items)
    seller = rng.integers(0, cfg.n_sellers, cfg.n_items)
    popularity = _zipf(cfg.n_items, cfg.zipf_exponent, rng)
    by_category = [np.flatnonzero(category == c) for c in range(cfg.n_categories)]
    by_brand = {b: np.flatnonzero(brand == b) for b in np.unique(brand)}

    # Users: (gender, age) groups each prefer a handful of categories; a user's taste is a noisy copy.
    n_groups = 2 * 6
    group_taste = rng.dirichlet(np.full(cfg.n_categories, 0.3), size=n_groups)
    gender = rng.integers(0, 2, cfg.n_users)
    age = rng.integers(0, 6, cfg.n_users)
    taste = np.stack([rng.dirichlet(50 * group_taste[g * 6 + a] + 0.05) for g, a in zip(gender, age)])

    rows: list[tuple[int, int, int, int]] = []  # (user, item, behavior, timestamp)
    for user in range(cfg.n_users):
        n_sessions = max(2, rng.poisson(cfg.sessions_per_user))
        day = int(rng.integers(0, 30))
        pending: list[int] = []  # purchases decided in an earlier session, made in a later one
        for _ in range(n_sessions):
            day += 1 + int(rng.geometric(0.25))
            clock = day * DAY + int(rng.integers(8 * 3600, 22 * 3600))
            target = None
            if rng.random() < cfg.focused_share:
                events, target = _focused_session(cfg, rng, taste[user], by_category, by_brand, brand, popularity)
            else:
                events = _noise_session(cfg, rng, popularity)
            if pending and rng.random() < 0.5:
                events.append((pending.pop(0), BUY))
            if target is not None:
                if rng.random() < cfg.delayed_buy_share:
                    pending.append(target)
                else:
                    events.append((target, BUY))
            for item, behavior in events:
                clock += int(rng.integers(5, 600))
                rows.append((user, item, behavior, clock))

    data = np.asarray(rows, dtype=np.int64)
    interactions = pd.DataFrame(
        {
            "user": data[:, 0],
            "item": data[:, 1],
            "behavior": data[:, 2].astype(np.int8),
            "timestamp": data[:, 3],
            "order": np.arange(len(data), dtype=np.int64),
        }
    )
    items = pd.DataFrame(
        {"category": category, "brand": brand, "seller": seller},
        index=pd.Index(np.arange(cfg.n_items), name="item_id"),
    )
    users = pd.DataFrame({"gender": gender, "age": age}, index=pd.Index(np.arange(cfg.n_users), name="user_id"))
    return Log(interactions, items, users, f"synthetic(seed={cfg.seed}, users={cfg.n_users}, items={cfg.n_items})")


def _pick(pool: np.ndarray, popularity: np.ndarray, rng: np.random.Generator, size: int) -> np.ndarray:
    weights = popularity[pool]
    return rng.choice(pool, size=size, p=weights / weights.sum())


def _noise_session(cfg: SyntheticConfig, rng: np.random.Generator, popularity: np.ndarray) -> list[tuple[int, int]]:
    """Browsing with no intent: popular items from anywhere, almost only clicks."""
    n = 1 + int(rng.poisson(4))
    items = rng.choice(cfg.n_items, size=n, p=popularity)
    return [(int(i), FAV if rng.random() < 0.03 else CLICK) for i in items]


def _focused_session(
    cfg: SyntheticConfig,
    rng: np.random.Generator,
    taste: np.ndarray,
    by_category: list[np.ndarray],
    by_brand: dict[int, np.ndarray],
    brand: np.ndarray,
    popularity: np.ndarray,
) -> tuple[list[tuple[int, int]], int | None]:
    """A coherent cluster: one category, mostly one brand, escalating to fav/cart; returns the events and
    the item the session converts on (None for most sessions)."""
    cat = int(rng.choice(len(taste), p=taste))
    pool = by_category[cat]
    if len(pool) == 0:
        return _noise_session(cfg, rng, popularity), None
    anchor = int(_pick(pool, popularity, rng, 1)[0])
    brand_pool = by_brand[int(brand[anchor])]
    n = 2 + int(rng.poisson(5))
    from_brand = rng.random(n) < 0.6
    cluster = np.where(from_brand, _pick(brand_pool, popularity, rng, n), _pick(pool, popularity, rng, n))
    events: list[tuple[int, int]] = []
    considered: list[int] = []
    for item in cluster:
        events.append((int(item), CLICK))
        u = rng.random()
        if u < 0.10:
            events.append((int(item), FAV))
            considered.append(int(item))
        elif u < 0.22:
            events.append((int(item), CART))
            considered.append(int(item))
    # Noise interleaved inside the cluster: real histories are never clean.
    for _ in range(int(rng.poisson(1.0))):
        events.insert(int(rng.integers(0, len(events) + 1)), (int(rng.choice(cfg.n_items, p=popularity)), CLICK))
    if rng.random() >= cfg.convert_prob:
        return events, None
    if rng.random() < cfg.repeat_buy_share:
        # Items the user favourited or carted are three times as likely to be bought as clicked-only ones.
        candidates = np.asarray([int(i) for i in cluster] + considered * 2)
        return events, int(rng.choice(candidates))
    fresh = np.setdiff1d(brand_pool, cluster)
    return events, int(_pick(fresh if len(fresh) else pool, popularity, rng, 1)[0])
