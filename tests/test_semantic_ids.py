from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from bench.data.preprocess import PreprocessConfig, preprocess
from bench.data.split import SplitConfig, build_split
from bench.data.synthetic import SyntheticConfig, generate
from bench.errors import BenchError
from bench.semantic_ids import SemanticIdConfig, fingerprint, fit, item_vectors, load_or_fit, same_codes
from tests.conftest import make_log


@pytest.fixture(scope="module")
def split():
    log = preprocess(generate(SyntheticConfig(n_users=200, n_items=300)), PreprocessConfig())
    return build_split(log, SplitConfig(max_history=20))


def test_every_item_gets_a_unique_tuple_and_maps_back(split) -> None:
    ids = fit(split, SemanticIdConfig(codebook_size=16))
    assert ids.codes.shape == (split.n_items, 4)
    assert len(np.unique(ids.codes, axis=0)) == split.n_items
    assert all(ids.codes[:, level].max() < v for level, v in enumerate(ids.vocab_sizes))
    assert np.array_equal(ids.item_of(ids.codes), np.arange(split.n_items))
    assert ids.item_of(np.array([[15, 15, 15, 999]]))[0] == -1
    for key in ("collision_rate", "largest_collision_group", "level0_utilisation", "level2_entropy"):
        assert key in ids.stats
    assert ids.vocab_sizes[3] == ids.stats["largest_collision_group"]


def test_dedup_level_grows_instead_of_merging() -> None:
    # 12 items that are indistinguishable (same feature, no co-occurrence) must still get 12 tuples.
    rows = [(f"u{u}", f"i{u}", "click", 1) for u in range(12)] + [("a", "x", "click", 1), ("a", "y", "click", 2),
            ("a", "x", "buy", 3), ("a", "y", "click", 4), ("a", "y", "buy", 5)]  # fmt: skip
    items = pd.DataFrame({"category": [0] * 14}, index=pd.Index([f"i{u}" for u in range(12)] + ["x", "y"], name="item_id"))
    split = build_split(make_log(rows, items), SplitConfig(min_history=1))
    ids = fit(split, SemanticIdConfig(codebook_size=4, svd_dim=2))
    assert len(np.unique(ids.codes, axis=0)) == split.n_items
    assert ids.stats["largest_collision_group"] >= 12


def test_collapse_fails_loudly(split) -> None:
    with pytest.raises(BenchError, match="codebook collapsed at level 1"):
        fit(split, SemanticIdConfig(codebook_size=16, min_utilisation=1.01))


def test_only_training_events_build_the_collaborative_part() -> None:
    # "z" occurs only as u's test target: its collaborative block must be zero, its features not.
    rows = [("u", "a", "click", 1), ("u", "b", "click", 2), ("u", "a", "buy", 3), ("u", "b", "click", 4),
            ("u", "b", "buy", 5), ("u", "z", "buy", 6), ("v", "a", "click", 1), ("v", "b", "cart", 2)]  # fmt: skip
    items = pd.DataFrame({"category": [0, 1, 2]}, index=pd.Index(["a", "b", "z"], name="item_id"))
    split = build_split(make_log(rows, items), SplitConfig(min_history=2))
    cfg = SemanticIdConfig(svd_dim=1, features=("category",), feature_dim=4)
    vectors = item_vectors(split, cfg)
    z = int(np.flatnonzero(split.item_ids == "z")[0])
    assert np.all(vectors[z, :1] == 0) and np.any(vectors[z, 1:] != 0)


def test_cached_codes_equal_fitted(split, tmp_path: Path) -> None:
    cfg = SemanticIdConfig(codebook_size=16)
    first = load_or_fit(split, cfg, tmp_path)
    assert len(list(tmp_path.glob("*.npz"))) == 1
    again = load_or_fit(split, cfg, tmp_path)
    assert np.array_equal(first.codes, again.codes) and first.vocab_sizes == again.vocab_sizes
    assert again.stats["collision_rate"] == first.stats["collision_rate"]


def test_random_codes_have_the_shape_and_no_collisions() -> None:
    from bench.semantic_ids import SemanticIds, random_like

    rng = np.random.default_rng(0)
    fitted = SemanticIds(np.stack([rng.integers(0, 8, 500), rng.integers(0, 8, 500), np.zeros(500, int)], axis=1), (8, 8, 1), {})
    ids = random_like(fitted, seed=3)
    assert ids.codes.shape == (500, 3) and ids.vocab_sizes[:2] == (8, 8)
    assert len({tuple(c) for c in ids.codes}) == 500  # collision-free
    assert ids.codes[:, 2].max() + 1 == ids.vocab_sizes[2]
    assert np.array_equal(random_like(fitted, seed=3).codes, ids.codes)  # seeded
    # Their own collision statistics, not the fitted codes': 500 items over 64 prefixes all collide.
    assert ids.stats["random"] and ids.stats["collision_rate"] == 1.0 and ids.stats["distinct_prefixes"] <= 64
    assert ids.stats["largest_collision_group"] == ids.vocab_sizes[2] and ids.stats["fingerprint"] == fingerprint(ids.codes)


def test_the_last_level_enumerates_items_sharing_a_prefix_in_index_order() -> None:
    from bench.semantic_ids import with_last_level

    codes, stats = with_last_level(np.array([[1, 2], [0, 0], [1, 2], [3, 3], [1, 2]]))
    assert codes[:, 2].tolist() == [0, 0, 1, 0, 2]
    assert stats["collision_rate"] == 3 / 5 and stats["largest_collision_group"] == 3 and stats["distinct_prefixes"] == 3


def test_collisions_by_training_events_hand_computed() -> None:
    from bench.semantic_ids import collisions_by_training_events

    # Items 0 and 2 share prefix (1, 2); items 3 and 4 share (5, 5); item 1 is alone.
    codes = np.array([[1, 2, 0], [0, 0, 0], [1, 2, 1], [5, 5, 0], [5, 5, 1]])
    rows = collisions_by_training_events(codes, np.array([0, 0, 7, 4, 1]))
    assert rows == [("0", 2, 0.5), ("1", 1, 1.0), ("2", 0, 0.0), ("3-5", 1, 1.0), ("6+", 1, 1.0)]


def test_collisions_and_features_hand_computed() -> None:
    from bench.semantic_ids import collisions_and_features

    codes = np.array([[1, 2, 0], [0, 0, 0], [1, 2, 1], [5, 5, 0], [5, 5, 1]])
    category, brand = np.array([3, 3, 3, 4, 7]), np.array([9, 9, 9, 9, 9])
    # Items 0, 1, 2 have the same values (3, 9); items 3 (4, 9) and 4 (7, 9) none other has. Of the two
    # collision groups, {0, 2} shares one value set and {3, 4} does not.
    assert collisions_and_features(codes, [category, brand]) == (3, 3 / 5, 1 / 2)


def test_the_fit_runs_on_one_blas_thread_whatever_the_process_allows(split, monkeypatch: pytest.MonkeyPatch) -> None:
    # OpenBLAS orders ARPACK's sums by its thread count, and k-means carries a last-digit difference into
    # other codes (on taobao-ecomm-2019, for every item): the fit must not depend on the caller's threads.
    from threadpoolctl import threadpool_info, threadpool_limits

    import bench.semantic_ids as semantic_ids

    seen: list[int] = []
    real = semantic_ids.svds

    def recording(*args, **kwargs):  # noqa: ANN002, ANN003, ANN202 - svds' own signature
        seen.extend(p["num_threads"] for p in threadpool_info() if p["user_api"] == "blas")
        return real(*args, **kwargs)

    monkeypatch.setattr(semantic_ids, "svds", recording)
    with threadpool_limits(limits=2, user_api="blas"):
        fit(split, SemanticIdConfig(codebook_size=16))
    assert seen and set(seen) == {1}


def test_the_fingerprint_names_the_codes_fitted_or_read(split, tmp_path: Path) -> None:
    from bench.semantic_ids import fingerprint

    cfg = SemanticIdConfig(codebook_size=16)
    fitted = load_or_fit(split, cfg, tmp_path)
    assert fitted.stats["fingerprint"] == fingerprint(fitted.codes) and len(fitted.stats["fingerprint"]) == 16
    # A cache written before fingerprints were recorded: the fingerprint is of the codes read, not the JSON's.
    json_path = next(tmp_path.glob("*.json"))
    json_path.write_text(json_path.read_text().replace('"fingerprint"', '"old"'))
    assert load_or_fit(split, cfg, tmp_path).stats["fingerprint"] == fitted.stats["fingerprint"]
    other = fitted.codes.copy()
    other[[0, 1]] = other[[1, 0]]
    assert fingerprint(other) != fitted.stats["fingerprint"]


def test_two_records_name_the_same_codes_by_fingerprint_or_else_by_every_statistic() -> None:
    stats = {"distinct_prefixes": 7780, "collision_rate": 0.16128306133933595}
    a, b = {**stats, "fingerprint": "a" * 16}, {**stats, "fingerprint": "b" * 16}
    assert same_codes(a, a) and not same_codes(a, b)  # two fingerprints decide, whatever the statistics say
    assert same_codes(stats, a) and same_codes(b, stats)  # a record from before fingerprints: its statistics
    assert not same_codes({**stats, "collision_rate": 0.1612830613393359}, a)  # every digit counts
    assert not same_codes({"distinct_prefixes": 7780}, a)  # and every statistic
