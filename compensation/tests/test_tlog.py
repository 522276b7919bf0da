"""The Merkle tree of the transparency log against a naive RFC 9162 tree.

The naive tree below is the RFC's recursive definition, written separately
from the stored-hash code so that the two can disagree.
"""

import hashlib
import subprocess
import sys

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from compensation import tlog
from compensation.tlog import (
    MemoryHashStore,
    ProofError,
    Tile,
    TileError,
    TileHashReader,
)

PROPERTY = settings(max_examples=150, deadline=None)


# --- a naive RFC 9162 §2.1 tree ---------------------------------------------------


def _k(n):
    k = 1
    while k * 2 < n:
        k *= 2
    return k


def naive_mth(leaves):
    if not leaves:
        return hashlib.sha256(b"").digest()
    if len(leaves) == 1:
        return hashlib.sha256(b"\x00" + leaves[0]).digest()
    k = _k(len(leaves))
    return hashlib.sha256(b"\x01" + naive_mth(leaves[:k]) + naive_mth(leaves[k:])).digest()


def naive_path(m, leaves):
    if len(leaves) == 1:
        return []
    k = _k(len(leaves))
    if m < k:
        return [*naive_path(m, leaves[:k]), naive_mth(leaves[k:])]
    return [*naive_path(m - k, leaves[k:]), naive_mth(leaves[:k])]


def naive_subproof(m, leaves, complete):
    n = len(leaves)
    if m == n:
        return [] if complete else [naive_mth(leaves)]
    k = _k(n)
    if m <= k:
        return [*naive_subproof(m, leaves[:k], complete), naive_mth(leaves[k:])]
    return [*naive_subproof(m - k, leaves[k:], False), naive_mth(leaves[:k])]


def leaves_of(n, salt=b""):
    return [b"entry %d %s" % (i, salt) for i in range(n)]


def store_of(leaves):
    store = MemoryHashStore()
    store.append(leaves)
    return store


# --- hashing and layout ---------------------------------------------------------------


def test_leaf_and_node_hashes_are_domain_separated_sha256():
    assert tlog.leaf_hash(b"") == hashlib.sha256(b"\x00").digest()
    left, right = b"L" * 32, b"R" * 32
    assert tlog.node_hash(left, right) == hashlib.sha256(b"\x01" + left + right).digest()
    # RFC 9162 §2.1.1: the empty tree is the hash of nothing.
    assert tlog.tree_hash(0, lambda idx: []) == hashlib.sha256(b"").digest()


def test_stored_hash_index_matches_the_go_layout():
    # The first indexes of golang.org/x/mod/sumdb/tlog's layout, by hand:
    # leaf 0, leaf 1, (1,0), leaf 2, leaf 3, (1,1), (2,0), leaf 4, ...
    expected = [(0, 0), (0, 1), (1, 0), (0, 2), (0, 3), (1, 1), (2, 0), (0, 4)]
    assert [tlog.stored_hash_index(level, n) for level, n in expected] == list(range(8))
    for index in range(5000):
        assert tlog.stored_hash_index(*tlog.split_stored_hash_index(index)) == index


@PROPERTY
@given(st.integers(min_value=0, max_value=2**40))
def test_stored_hash_count_is_where_the_next_leaf_goes(size):
    assert tlog.stored_hash_count(size) == tlog.stored_hash_index(0, size)


@PROPERTY
@given(st.integers(min_value=1, max_value=300))
def test_tree_hash_matches_the_naive_tree_for_every_prefix(n):
    leaves = leaves_of(n)
    store = store_of(leaves)
    assert len(store.hashes) == tlog.stored_hash_count(n)
    for size in {1, n // 2 or 1, n - 1 or 1, n}:
        assert store.tree_hash(size) == naive_mth(leaves[:size])


def test_appending_reads_only_the_old_frontier_once_and_writes_only_new_hashes():
    store = store_of(leaves_of(1000))
    before = list(store.hashes)
    calls = []

    def spying_reader(indexes):
        calls.append(list(indexes))
        return store.read_hashes(indexes)

    new_leaves = [tlog.leaf_hash(b) for b in leaves_of(777, b"new")]
    new = tlog.append_hashes(1000, new_leaves, spying_reader)
    assert len(calls) == 1
    assert len(calls[0]) == bin(1000).count("1")  # the frontier of 1000 leaves
    assert all(i < tlog.stored_hash_count(1000) for i in calls[0])
    assert len(new) == tlog.stored_hash_count(1777) - tlog.stored_hash_count(1000)
    store.hashes.extend(new)
    store.size = 1777
    assert store.hashes[: len(before)] == before  # nothing rewritten
    assert store.tree_hash() == naive_mth(leaves_of(1000) + leaves_of(777, b"new"))


@PROPERTY
@given(st.lists(st.integers(min_value=1, max_value=70), min_size=1, max_size=6))
def test_appending_in_batches_equals_appending_at_once(batches):
    leaves = leaves_of(sum(batches))
    one, many = store_of(leaves), MemoryHashStore()
    at = 0
    for size in batches:
        many.append(leaves[at : at + size])
        at += size
    assert many.hashes == one.hashes


# --- inclusion proofs -------------------------------------------------------------------


@PROPERTY
@given(st.integers(min_value=1, max_value=400), st.data())
def test_inclusion_proofs_match_the_rfc_path_and_verify(n, data):
    leaves = leaves_of(n)
    store = store_of(leaves)
    index = data.draw(st.integers(min_value=0, max_value=n - 1))
    size = data.draw(st.integers(min_value=index + 1, max_value=n))
    proof = store.inclusion_proof(index, size)
    assert proof == naive_path(index, leaves[:size])
    root = naive_mth(leaves[:size])
    tlog.check_inclusion(proof, size, root, index, tlog.leaf_hash(leaves[index]))


@PROPERTY
@given(st.integers(min_value=2, max_value=300), st.data())
def test_a_tampered_inclusion_proof_fails(n, data):
    leaves = leaves_of(n)
    store = store_of(leaves)
    index = data.draw(st.integers(min_value=0, max_value=n - 1))
    proof, root, leaf = (
        store.inclusion_proof(index),
        store.tree_hash(),
        tlog.leaf_hash(leaves[index]),
    )
    with pytest.raises(ProofError) as wrong_leaf:
        tlog.check_inclusion(proof, n, root, index, tlog.leaf_hash(b"forged"))
    assert wrong_leaf.value.code == "root_mismatch"
    if proof:
        at = data.draw(st.integers(min_value=0, max_value=len(proof) - 1))
        bad = list(proof)
        bad[at] = bytes([bad[at][0] ^ 1]) + bad[at][1:]
        with pytest.raises(ProofError):
            tlog.check_inclusion(bad, n, root, index, leaf)
        with pytest.raises(ProofError) as short:
            tlog.check_inclusion(proof[:-1], n, root, index, leaf)
        assert short.value.code in {"bad_proof", "root_mismatch"}
    with pytest.raises(ProofError):
        tlog.check_inclusion([*proof, root], n, root, index, leaf)
    other = (index + 1) % n
    if naive_path(other, leaves) != proof:
        with pytest.raises(ProofError):
            tlog.check_inclusion(proof, n, root, other, leaf)


def test_inclusion_refuses_an_index_outside_the_tree():
    store = store_of(leaves_of(5))
    for index, size in [(5, 5), (-1, 5), (0, 0)]:
        with pytest.raises(ProofError) as refused:
            tlog.inclusion_proof(index, size, store.read_hashes)
        assert refused.value.code == "bad_index"
        with pytest.raises(ProofError):
            tlog.check_inclusion([], size, b"\0" * 32, index, b"\0" * 32)
    with pytest.raises(ProofError) as short_hash:
        tlog.check_inclusion([b"short"], 5, store.tree_hash(), 0, b"\0" * 32)
    assert short_hash.value.code == "bad_hash"


# --- consistency proofs -----------------------------------------------------------------


@PROPERTY
@given(st.integers(min_value=1, max_value=400), st.data())
def test_consistency_proofs_match_the_rfc_subproof_and_verify(n, data):
    leaves = leaves_of(n)
    store = store_of(leaves)
    old = data.draw(st.integers(min_value=1, max_value=n))
    proof = store.consistency_proof(old, n)
    assert proof == naive_subproof(old, leaves, True)
    tlog.check_consistency(proof, old, naive_mth(leaves[:old]), n, naive_mth(leaves))


@PROPERTY
@given(st.integers(min_value=2, max_value=300), st.data())
def test_a_forked_history_fails_the_consistency_check(n, data):
    leaves = leaves_of(n)
    old = data.draw(st.integers(min_value=1, max_value=n - 1))
    changed = data.draw(st.integers(min_value=0, max_value=old - 1))
    forked = list(leaves)
    forked[changed] = b"rewritten"
    store = store_of(forked)  # the new tree rewrote an entry the old one had
    proof = store.consistency_proof(old, n)
    with pytest.raises(ProofError) as refused:
        tlog.check_consistency(proof, old, naive_mth(leaves[:old]), n, store.tree_hash())
    assert refused.value.code == "root_mismatch"
    honest = store_of(leaves)
    good = honest.consistency_proof(old, n)
    with pytest.raises(ProofError):
        tlog.check_consistency(good, old, honest.tree_hash(old), n, store.tree_hash())
    if good:
        with pytest.raises(ProofError):
            tlog.check_consistency(good[:-1], old, honest.tree_hash(old), n, honest.tree_hash())


def test_consistency_edge_cases():
    store = store_of(leaves_of(8))
    root = store.tree_hash()
    assert store.consistency_proof(0, 8) == []
    tlog.check_consistency([], 0, tlog.EMPTY_TREE_HASH, 8, root)
    assert store.consistency_proof(8, 8) == []
    tlog.check_consistency([], 8, root, 8, root)
    with pytest.raises(ProofError) as same_size:
        tlog.check_consistency([], 8, root, 8, store.tree_hash(7))
    assert same_size.value.code == "root_mismatch"
    with pytest.raises(ProofError) as shrink:
        store.consistency_proof(5, 4)
    assert shrink.value.code == "bad_size"
    with pytest.raises(ProofError) as shrink_check:
        tlog.check_consistency([], 5, root, 4, root)
    assert shrink_check.value.code == "bad_size"


# --- tiles ------------------------------------------------------------------------------


def test_tile_paths_follow_c2sp_tlog_tiles():
    assert Tile(0, 1234067).path == "tile/0/x001/x234/067"
    assert Tile(3, 1234067, 1).path == "tile/3/x001/x234/067.p/1"
    assert Tile(0, 0, 112).path == "tile/0/000.p/112"
    assert Tile(tlog.ENTRIES_LEVEL, 1000).path == "tile/entries/x001/000"
    for tile in [Tile(0, 0), Tile(2, 999, 17), Tile(-1, 10**9 + 7, 255), Tile(63, 5)]:
        assert tlog.parse_tile_path(tile.path) == tile


@pytest.mark.parametrize(
    "path",
    [
        "tile/0/0",  # not three digits
        "tile/00/000",  # leading zero in the level
        "tile/64/000",  # level out of range
        "tile/0/001/002",  # inner element without x
        "tile/0/x000/001",  # non-canonical: leading x000
        "tile/0/000.p/256",  # a full tile is never .p
        "tile/0/000.p/0",
        "tile/0/000.p/07",
        "tile/0/000.p/",
        "tile/0/-01",
        "tile/data/000",
        "tiles/0/000",
        "tile/0/０００",  # fullwidth digits
        "tile/0/000/",
        "tile/" + "x001/" * 60 + "000",
    ],
)
def test_malformed_tile_paths_are_refused(path):
    with pytest.raises(TileError) as refused:
        tlog.parse_tile_path(path)
    assert refused.value.code == "bad_tile_path"


def test_tiles_for_size_matches_the_spec_examples():
    # "a tree of size 70,000 will be represented by 273 full level 0 tiles, one
    # partial level 0 tile of width 112, one full level 1 tile, one partial
    # level 1 tile of width 17, and one partial level 2 tile of width 1."
    tiles = tlog.tiles_for_size(70_000)
    assert [t for t in tiles if t.level == 0 and t.is_full] == [Tile(0, n) for n in range(273)]
    assert [t for t in tiles if not (t.level == 0 and t.is_full)] == [
        Tile(0, 273, 112),
        Tile(1, 0),
        Tile(1, 1, 17),
        Tile(2, 0, 1),
    ]
    # "a tree of size 256 will be represented by a full level 0 tile and a
    # partial level 1 tile of width 1."
    assert tlog.tiles_for_size(256) == [Tile(0, 0), Tile(1, 0, 1)]
    assert tlog.tiles_for_size(70_000, entries=True)[-1] == Tile(-1, 273, 112)
    assert tlog.tiles_for_size(0) == []


def test_a_tile_holds_the_hashes_of_its_level():
    leaves = leaves_of(70_000)
    store = store_of(leaves)
    level0 = tlog.read_tile(Tile(0, 1), store.read_hashes)
    assert level0[:32] == tlog.leaf_hash(leaves[256])
    level1 = tlog.read_tile(Tile(1, 0), store.read_hashes)
    assert level1[32:64] == naive_mth(leaves[256:512])
    tlog.check_tile_in_tree(Tile(1, 1, 17), 70_000)
    tlog.check_tile_in_tree(Tile(1, 1, 3), 70_000)  # an older partial tile
    with pytest.raises(TileError) as too_wide:
        tlog.check_tile_in_tree(Tile(1, 1, 18), 70_000)
    assert too_wide.value.code == "tile_not_in_tree"
    with pytest.raises(TileError):
        tlog.check_tile_in_tree(Tile(0, 274), 70_000)


@pytest.mark.parametrize("size", [1, 255, 256, 257, 1000, 65_536, 70_000])
def test_tile_hash_reader_proves_hashes_from_tiles_alone(size):
    leaves = leaves_of(size)
    store = store_of(leaves)
    served = {t: tlog.read_tile(t, store.read_hashes) for t in tlog.tiles_for_size(size)}
    fetched = []

    def read_tiles(tiles):
        fetched.append(list(tiles))
        return [served[t] for t in tiles]

    tile_reader = TileHashReader(size, store.tree_hash(), read_tiles)
    reads = []

    def reader(indexes):
        reads.append(indexes)
        return tile_reader(indexes)

    assert tlog.tree_hash(size, reader) == store.tree_hash()
    for index in {0, size // 3, size - 1}:
        assert tlog.inclusion_proof(index, size, reader) == store.inclusion_proof(index)
    if size > 1:
        assert tlog.consistency_proof(size // 2 or 1, size, reader) == store.consistency_proof(
            size // 2 or 1
        )
    assert len(fetched) == len(reads)  # one fetch of tiles per read of hashes


def test_tile_hash_reader_refuses_a_tampered_tile():
    size = 70_000
    store = store_of(leaves_of(size))
    served = {t: tlog.read_tile(t, store.read_hashes) for t in tlog.tiles_for_size(size)}
    root = store.tree_hash()
    for victim in [Tile(0, 5), Tile(0, 273, 112), Tile(1, 0), Tile(2, 0, 1)]:
        forged = dict(served)
        forged[victim] = b"\xff" + served[victim][1:]
        reader = TileHashReader(size, root, lambda tiles, forged=forged: [forged[t] for t in tiles])
        with pytest.raises(TileError) as refused:
            tlog.inclusion_proof(5 * 256 + 3, size, reader)
        assert refused.value.code == "inconsistent_tile"
    short = dict(served)
    short[Tile(0, 5)] = served[Tile(0, 5)][:-1]
    reader = TileHashReader(size, root, lambda tiles: [short[t] for t in tiles])
    with pytest.raises(TileError) as truncated:
        tlog.inclusion_proof(5 * 256, size, reader)
    assert truncated.value.code == "bad_tile"
    honest = TileHashReader(size, root, lambda tiles: [served[t] for t in tiles])
    with pytest.raises(TileError) as outside:
        honest([tlog.stored_hash_count(size)])
    assert outside.value.code == "index_not_in_tree"


def test_entry_bundles_round_trip_and_refuse_truncation():
    entries = [b"", b"a", b"x" * 300, "会员".encode()]
    bundle = tlog.entry_bundle(entries)
    assert bundle[:2] == b"\x00\x00" and bundle[2:5] == b"\x00\x01a"
    assert tlog.parse_entry_bundle(bundle, width=4) == entries
    for bad in [bundle[:-1], bundle + b"\x00", b"\x00\x05abc"]:
        with pytest.raises(TileError) as refused:
            tlog.parse_entry_bundle(bad, width=4)
        assert refused.value.code == "bad_bundle"
    with pytest.raises(TileError) as too_big:
        tlog.entry_bundle([b"x" * 65_536])
    assert too_big.value.code == "entry_too_large"


def test_the_tree_and_note_modules_import_no_django():
    code = (
        "import sys; import compensation.tlog, compensation.tlog_notes; "
        "print(any(m == 'django' or m.startswith('django.') for m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_the_benchmark_runs_small_and_reports_log_sized_proofs():
    from benchmarks import tlog as bench

    result = bench.run(None, {"leaves": 3000, "batch": 700, "proofs": 20, "big_tree": 5000})
    sizes = result["results"]["computed_sizes"]
    # ceil(log2 n) hashes for the first entry: 17, 20 and 24.
    assert [sizes[str(n)]["proof_hashes_first_middle_last"][0] for n in bench.COMPUTED_SIZES] == [
        17,
        20,
        24,
    ]
    assert sizes["10000000"]["receipt_log_json_bytes_max"] < 4096
    assert {t["metric"] for t in result["targets"]} >= {"receipt log object at 10M leaves, bytes"}
    assert result["results"]["append_bulk"]["stored_hashes_written"] == tlog.stored_hash_count(3000)
