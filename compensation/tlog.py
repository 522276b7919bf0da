"""The Merkle tree of the ledger's transparency log: pure, no Django.

Hashing, stored-hash layout, proofs and tiles of an append-only log that
anyone can check outside the portal (DESIGN §4 "The ledger is the only way
membership time moves", §6 "The ledger's transparency log"). Signed notes and
checkpoints are in ``compensation.tlog_notes``.

Formats followed (checked against the texts, not from memory):

- RFC 9162 (Certificate Transparency 2.0), §2.1 (the same tree as RFC 6962
  §2.1): leaf hash ``SHA-256(0x00 || data)``, interior node
  ``SHA-256(0x01 || left || right)``, the tree of ``n`` leaves split at the
  largest power of two smaller than ``n``; inclusion proofs §2.1.3 (PATH,
  verification §2.1.3.2) and consistency proofs §2.1.4 (SUBPROOF,
  verification §2.1.4.2). The empty tree's hash is ``SHA-256()``.
- The stored-hash layout of Go's ``golang.org/x/mod/sumdb/tlog`` (v0.7.0, as
  Debian ships it; Crosby and Wallach §3.3): the hashes of a log are written
  in one dense sequence, leaf ``n``'s hash followed by the hashes of the
  subtrees that leaf completes, so appending ``k`` leaves writes only about
  ``2k`` new hashes and never rewrites one, and the root of any tree size is
  computed from at most ``1 + log2 n`` stored hashes.
- C2SP ``tlog-tiles`` (editor's copy at commit 0ad71eb, c2sp.org/tlog-tiles):
  tiles of height 8 (256 hashes, 8,192 bytes when full) at
  ``tile/<L>/<N>[.p/<W>]``, ``<N>`` in 3-digit path elements (``x001/x234/067``),
  partial width ``<W>`` 1 to 255; entry bundles at ``tile/entries/<N>[.p/<W>]``,
  each entry prefixed by its length as a big-endian uint16.

Storage plugs in as a ``HashReader``: a function from a list of stored-hash
indexes to the hashes at those indexes (a database query, a file, a list).
Nothing here keeps the tree in memory except ``MemoryHashStore``, which tests
and benchmarks use.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass

HASH_SIZE = 32
TILE_HEIGHT = 8
TILE_WIDTH = 1 << TILE_HEIGHT  # hashes in a full tile
ENTRIES_LEVEL = -1  # the level of entry bundles in a Tile
MAX_TILE_LEVEL = 63
MAX_ENTRY_SIZE = 0xFFFF  # an entry bundle's length prefix is a uint16

EMPTY_TREE_HASH = hashlib.sha256(b"").digest()  # RFC 9162 §2.1.1: MTH({})

# The storage interface: stored-hash indexes in, the same number of 32-byte
# hashes out, in the same order (raise on a missing one).
HashReader = Callable[[Sequence[int]], Sequence[bytes]]


class TlogError(ValueError):
    """A refused input, with a stable machine-readable ``code``."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code


class ProofError(TlogError):
    """An inclusion or consistency proof that does not verify."""


class TileError(TlogError):
    """A malformed tile path, tile or entry bundle, or one the tree does not support."""


# --- hashing ----------------------------------------------------------------


def leaf_hash(data: bytes) -> bytes:
    """RFC 9162 §2.1.1: the hash of a leaf is SHA-256(0x00 || data)."""
    return hashlib.sha256(b"\x00" + data).digest()


def node_hash(left: bytes, right: bytes) -> bytes:
    """RFC 9162 §2.1.1: an interior node is SHA-256(0x01 || left || right)."""
    return hashlib.sha256(b"\x01" + left + right).digest()


def _split_point(n: int) -> int:
    """The largest power of two smaller than ``n`` (n >= 2): RFC 9162's ``k``."""
    return 1 << ((n - 1).bit_length() - 1)


# --- the stored-hash layout -------------------------------------------------


def stored_hash_index(level: int, n: int) -> int:
    """Where the ``n``-th hash of tree level ``level`` sits in the dense layout.

    Level 0 holds leaf hashes; the level-``l`` hash ``n`` covers leaves
    ``[n * 2**l, (n + 1) * 2**l)`` and is written right after the hash of its
    last leaf and of the smaller subtrees that leaf completes."""
    if level < 0 or n < 0:
        raise TlogError("bad_index", f"no stored hash at level {level}, index {n}")
    # The hash is written when its last leaf m = (n + 1) * 2**level - 1 is;
    # leaf m's own hash is at 2m - popcount(m) (m plus m/2 + m/4 + ... hashes
    # of completed subtrees before it), followed by `level` subtree hashes.
    m = ((n + 1) << level) - 1
    return 2 * m - m.bit_count() + level


def split_stored_hash_index(index: int) -> tuple[int, int]:
    """The inverse of ``stored_hash_index``: ``(level, n)`` of a stored index."""
    if index < 0:
        raise TlogError("bad_index", f"no stored hash at index {index}")
    # stored_hash_index(0, m) <= index < 2m + ..., so the leaf m whose write
    # produced this hash is in [index // 2, index // 2 + log2(index)].
    m = index // 2
    at = stored_hash_index(0, m)
    while True:
        following = at + 1 + ((m + 1) & -(m + 1)).bit_length() - 1
        if following > index:
            break
        m += 1
        at = following
    level = index - at
    return level, m >> level


def stored_hash_count(size: int) -> int:
    """How many stored hashes a tree of ``size`` leaves has written (the index
    at which leaf ``size``'s hashes will go)."""
    if size < 0:
        raise TlogError("bad_size", f"tree size {size} is negative")
    return 2 * size - size.bit_count()


def _frontier_indexes(size: int) -> list[int]:
    """Stored indexes of the maximal complete subtrees of ``[0, size)``, left
    to right: exactly what a tree hash needs, and exactly the earlier hashes
    that appending after ``size`` leaves ever reads."""
    return _subtree_indexes(0, size)


def _subtree_indexes(lo: int, hi: int) -> list[int]:
    """Stored indexes of the complete subtrees that make up ``[lo, hi)``, left
    to right (a range as RFC 9162's recursive split produces: ``lo`` is a
    multiple of a power of two at least ``hi - lo``)."""
    indexes = []
    while lo < hi:
        level = (hi - lo).bit_length() - 1
        k = 1 << level
        if lo & (k - 1):
            raise AssertionError(f"unaligned subtree range [{lo}, {hi})")
        indexes.append(stored_hash_index(level, lo >> level))
        lo += k
    return indexes


def _fold(hashes: Sequence[bytes]) -> bytes:
    """The hash of a range from its complete subtrees, left to right: the
    right-hand fringe is hashed first (RFC 9162's split puts the largest
    power of two on the left)."""
    h = hashes[-1]
    for left in reversed(hashes[:-1]):
        h = node_hash(left, h)
    return h


def _read(read: HashReader, indexes: Sequence[int]) -> list[bytes]:
    if not indexes:
        return []
    hashes = list(read(indexes))
    if len(hashes) != len(indexes):
        raise TlogError(
            "storage", f"storage returned {len(hashes)} hashes for {len(indexes)} indexes"
        )
    for h in hashes:
        if not isinstance(h, bytes | bytearray | memoryview) or len(h) != HASH_SIZE:
            raise TlogError("storage", "storage returned a hash that is not 32 bytes")
    return [bytes(h) for h in hashes]


def _range_hashes(ranges: Sequence[tuple[int, int]], read: HashReader) -> list[bytes]:
    """The hash of each leaf range, from one storage read."""
    per_range = [_subtree_indexes(lo, hi) for lo, hi in ranges]
    hashes = _read(read, [i for indexes in per_range for i in indexes])
    out, at = [], 0
    for indexes in per_range:
        out.append(_fold(hashes[at : at + len(indexes)]))
        at += len(indexes)
    return out


def append_hashes(size: int, leaf_hashes: Sequence[bytes], read: HashReader) -> list[bytes]:
    """The stored hashes to write when ``leaf_hashes`` are appended to a tree of
    ``size`` leaves, in order, starting at stored index ``stored_hash_count(size)``.

    Reads only the old tree's frontier (at most ``log2 size`` hashes, in one
    call); every other hash needed is one of the new ones."""
    if size < 0:
        raise TlogError("bad_size", f"tree size {size} is negative")
    base = stored_hash_count(size)
    frontier = _frontier_indexes(size)
    old = dict(zip(frontier, _read(read, frontier), strict=True))
    new: list[bytes] = []
    for offset, h in enumerate(leaf_hashes):
        if len(h) != HASH_SIZE:
            raise TlogError("bad_hash", "a leaf hash must be 32 bytes")
        n = size + offset
        new.append(bytes(h))
        # Each trailing 1 bit of n completes a subtree: hash it with the
        # complete subtree of the same height to its left.
        level = 0
        while (n >> level) & 1:
            left_index = stored_hash_index(level, (n >> level) - 1)
            left = new[left_index - base] if left_index >= base else old[left_index]
            h = node_hash(left, h)
            new.append(h)
            level += 1
    return new


def tree_hash(size: int, read: HashReader) -> bytes:
    """The root hash of the tree of the first ``size`` leaves (one read of at
    most ``1 + log2 size`` stored hashes)."""
    if size < 0:
        raise TlogError("bad_size", f"tree size {size} is negative")
    if size == 0:
        return EMPTY_TREE_HASH
    return _fold(_read(read, _frontier_indexes(size)))


# --- inclusion proofs (RFC 9162 §2.1.3) -------------------------------------


def _inclusion_ranges(index: int, size: int) -> list[tuple[int, int]]:
    """PATH(index, D[0:size]) as leaf ranges, leaf to root (§2.1.3.1)."""
    ranges = []
    lo, hi = 0, size
    while hi - lo > 1:
        k = _split_point(hi - lo)
        if index < lo + k:
            ranges.append((lo + k, hi))
            hi = lo + k
        else:
            ranges.append((lo, lo + k))
            lo = lo + k
    ranges.reverse()
    return ranges


def inclusion_proof(index: int, size: int, read: HashReader) -> list[bytes]:
    """The audit path proving leaf ``index`` is in the tree of ``size`` leaves."""
    if not 0 <= index < size:
        raise ProofError("bad_index", f"leaf {index} is not in a tree of {size} leaves")
    return _range_hashes(_inclusion_ranges(index, size), read)


def _check_hashes(*hashes: bytes) -> None:
    for h in hashes:
        if not isinstance(h, bytes) or len(h) != HASH_SIZE:
            raise ProofError("bad_hash", "every hash in a proof must be 32 bytes")


def check_inclusion(
    proof: Sequence[bytes], size: int, root: bytes, index: int, leaf: bytes
) -> None:
    """Verify that ``leaf`` (a leaf *hash*) is leaf ``index`` of the tree of
    ``size`` leaves whose root is ``root`` (RFC 9162 §2.1.3.2). Raises
    ``ProofError`` on any mismatch."""
    if not 0 <= index < size:
        raise ProofError("bad_index", f"leaf {index} is not in a tree of {size} leaves")
    _check_hashes(root, leaf, *proof)
    fn, sn, r = index, size - 1, leaf
    for p in proof:
        if sn == 0:
            raise ProofError("bad_proof", "the inclusion proof is too long")
        if fn & 1 or fn == sn:
            r = node_hash(p, r)
            if not fn & 1:
                while fn and not fn & 1:
                    fn >>= 1
                    sn >>= 1
        else:
            r = node_hash(r, p)
        fn >>= 1
        sn >>= 1
    if sn != 0:
        raise ProofError("bad_proof", "the inclusion proof is too short")
    if r != root:
        raise ProofError("root_mismatch", "the inclusion proof does not lead to the root")


# --- consistency proofs (RFC 9162 §2.1.4) -----------------------------------


def consistency_proof(old: int, new: int, read: HashReader) -> list[bytes]:
    """The proof that the tree of ``new`` leaves extends the tree of ``old``.

    Empty when ``old`` is 0 (every tree extends the empty one) or equal to ``new``."""
    if not 0 <= old <= new:
        raise ProofError("bad_size", f"no consistency proof from size {old} to size {new}")
    if old == 0 or old == new:
        return []
    return _range_hashes(_consistency_ranges(old, new), read)


def _consistency_ranges(old: int, new: int) -> list[tuple[int, int]]:
    """PROOF(old, D[0:new]) = SUBPROOF(old, D[0:new], true) as leaf ranges, in
    proof order (§2.1.4.1): walking down from the root, each step records the
    sibling range not taken; the old tree's last subtree comes first unless
    the old tree is a left-edge subtree the verifier already has."""
    ranges = []
    lo, hi, complete = 0, new, True
    while old != hi:
        k = _split_point(hi - lo)
        if old <= lo + k:
            ranges.append((lo + k, hi))
            hi = lo + k
        else:
            ranges.append((lo, lo + k))
            lo = lo + k
            complete = False
    if not complete:
        ranges.append((lo, hi))
    ranges.reverse()
    return ranges


def check_consistency(
    proof: Sequence[bytes], old_size: int, old_root: bytes, new_size: int, new_root: bytes
) -> None:
    """Verify that the tree of ``new_size`` leaves with root ``new_root`` extends
    the tree of ``old_size`` leaves with root ``old_root`` (RFC 9162 §2.1.4.2).
    Raises ``ProofError`` on any mismatch."""
    if not 0 <= old_size <= new_size:
        raise ProofError("bad_size", f"a tree of {new_size} leaves cannot extend one of {old_size}")
    _check_hashes(old_root, new_root, *proof)
    if old_size == 0:
        if proof:
            raise ProofError("bad_proof", "a proof from the empty tree must be empty")
        return
    if old_size == new_size:
        if proof:
            raise ProofError("bad_proof", "a proof between equal sizes must be empty")
        if old_root != new_root:
            raise ProofError("root_mismatch", "two trees of the same size differ")
        return
    path = list(proof)
    if old_size & (old_size - 1) == 0:  # an exact power of two
        path.insert(0, old_root)
    if not path:
        raise ProofError("bad_proof", "the consistency proof is empty")
    fn, sn = old_size - 1, new_size - 1
    while fn & 1:
        fn >>= 1
        sn >>= 1
    fr = sr = path[0]
    for c in path[1:]:
        if sn == 0:
            raise ProofError("bad_proof", "the consistency proof is too long")
        if fn & 1 or fn == sn:
            fr = node_hash(c, fr)
            sr = node_hash(c, sr)
            if not fn & 1:
                while fn and not fn & 1:
                    fn >>= 1
                    sn >>= 1
        else:
            sr = node_hash(sr, c)
        fn >>= 1
        sn >>= 1
    if sn != 0:
        raise ProofError("bad_proof", "the consistency proof is too short")
    if fr != old_root:
        raise ProofError("root_mismatch", "the consistency proof does not lead to the old root")
    if sr != new_root:
        raise ProofError("root_mismatch", "the consistency proof does not lead to the new root")


# --- an in-memory store (tests, benchmarks, a witness's scratch copy) --------


class MemoryHashStore:
    """The stored hashes of a log in a Python list; the reference backend."""

    def __init__(self) -> None:
        self.hashes: list[bytes] = []
        self.size = 0

    def read_hashes(self, indexes: Sequence[int]) -> list[bytes]:
        if any(i < 0 or i >= len(self.hashes) for i in indexes):
            raise TlogError("storage", "a stored hash outside the log")
        return [self.hashes[i] for i in indexes]

    def append(self, leaves: Iterable[bytes]) -> int:
        """Append leaf *data*; returns the new size."""
        return self.append_leaf_hashes([leaf_hash(d) for d in leaves])

    def append_leaf_hashes(self, hashes: Sequence[bytes]) -> int:
        new = append_hashes(self.size, hashes, self.read_hashes)
        self.hashes.extend(new)
        self.size += len(hashes)
        return self.size

    def tree_hash(self, size: int | None = None) -> bytes:
        return tree_hash(self.size if size is None else size, self.read_hashes)

    def inclusion_proof(self, index: int, size: int | None = None) -> list[bytes]:
        return inclusion_proof(index, self.size if size is None else size, self.read_hashes)

    def consistency_proof(self, old: int, new: int | None = None) -> list[bytes]:
        return consistency_proof(old, self.size if new is None else new, self.read_hashes)


# --- tiles (C2SP tlog-tiles) -------------------------------------------------


@dataclass(frozen=True, order=True)
class Tile:
    """A tile: ``width`` consecutive hashes at tree level ``8 * level``
    starting at hash ``index * 256`` (or, at ``ENTRIES_LEVEL``, the entries
    of leaves ``index * 256`` onwards)."""

    level: int
    index: int
    width: int = TILE_WIDTH

    def __post_init__(self) -> None:
        if not ENTRIES_LEVEL <= self.level <= MAX_TILE_LEVEL:
            raise TileError("bad_tile", f"tile level {self.level} is out of range")
        if self.index < 0 or not 1 <= self.width <= TILE_WIDTH:
            raise TileError("bad_tile", f"tile {self.index} of width {self.width} is invalid")

    @property
    def is_entries(self) -> bool:
        return self.level == ENTRIES_LEVEL

    @property
    def is_full(self) -> bool:
        return self.width == TILE_WIDTH

    @property
    def path(self) -> str:
        return tile_path(self)


def _encode_tile_index(n: int) -> str:
    parts = [f"{n % 1000:03d}"]
    n //= 1000
    while n:
        parts.append(f"x{n % 1000:03d}")
        n //= 1000
    return "/".join(reversed(parts))


def tile_path(tile: Tile) -> str:
    """``tile/<L>/<N>[.p/<W>]`` or ``tile/entries/<N>[.p/<W>]``."""
    level = "entries" if tile.is_entries else str(tile.level)
    partial = "" if tile.is_full else f".p/{tile.width}"
    return f"tile/{level}/{_encode_tile_index(tile.index)}{partial}"


def parse_tile_path(path: str) -> Tile:
    """The tile a path names, refusing any other spelling of it (leading zeros,
    a width of 256, missing ``x`` prefixes, ...): one tile, one path."""
    bad = TileError("bad_tile_path", f"not a tile path: {path[:200]!r}")
    parts = path.split("/")
    if len(parts) < 3 or parts[0] != "tile" or len(path) > 200:
        raise bad
    if parts[1] == "entries":
        level = ENTRIES_LEVEL
    elif parts[1].isascii() and parts[1].isdigit():
        level = int(parts[1])
    else:
        raise bad
    elements = parts[2:]
    width = TILE_WIDTH
    if len(elements) >= 2 and elements[-2].endswith(".p"):
        if not (elements[-1].isascii() and elements[-1].isdigit()):
            raise bad
        width = int(elements[-1])
        elements = [*elements[:-2], elements[-2][: -len(".p")]]
    index = 0
    for element in elements:
        digits = element.removeprefix("x")
        if len(digits) != 3 or not (digits.isascii() and digits.isdigit()):
            raise bad
        index = index * 1000 + int(digits)
    try:
        tile = Tile(level, index, width)
    except TileError:
        raise bad from None
    if tile_path(tile) != path:
        raise bad
    return tile


def tile_width_in_tree(level: int, index: int, size: int) -> int:
    """How many hashes tile ``(level, index)`` has in the tree of ``size``
    leaves: 256 for a full tile, 1 to 255 for the partial one, 0 if none."""
    count = size >> (TILE_HEIGHT * max(level, 0))
    return max(0, min(TILE_WIDTH, count - index * TILE_WIDTH))


def tiles_for_size(size: int, *, entries: bool = False) -> list[Tile]:
    """Every hash tile (or, with ``entries``, every entry bundle) of the tree of
    ``size`` leaves: the full ones and at most one partial tile per level."""
    tiles = []
    levels = [ENTRIES_LEVEL] if entries else range(MAX_TILE_LEVEL + 1)
    for level in levels:
        count = size >> (TILE_HEIGHT * max(level, 0))
        if count == 0:
            break
        full, partial = divmod(count, TILE_WIDTH)
        tiles.extend(Tile(level, n) for n in range(full))
        if partial:
            tiles.append(Tile(level, full, partial))
    return tiles


def check_tile_in_tree(tile: Tile, size: int) -> None:
    """Refuse a tile that the tree of ``size`` leaves cannot serve (C2SP: no
    empty tiles, no partial tile wider than the tree)."""
    if tile.width > tile_width_in_tree(tile.level, tile.index, size):
        raise TileError("tile_not_in_tree", f"{tile.path} is not in a tree of {size} leaves")


def read_tile(tile: Tile, read: HashReader) -> bytes:
    """The bytes of hash tile ``tile``: its ``width`` hashes concatenated."""
    if tile.is_entries:
        raise TileError("bad_tile", "entry bundles are not stored hashes")
    level, start = TILE_HEIGHT * tile.level, tile.index * TILE_WIDTH
    return b"".join(_read(read, [stored_hash_index(level, start + i) for i in range(tile.width)]))


def _complete_hash(data: bytes) -> bytes:
    """The root of a complete subtree given its 2**k bottom hashes."""
    if len(data) == HASH_SIZE:
        return data
    half = len(data) // 2
    return node_hash(_complete_hash(data[:half]), _complete_hash(data[half:]))


def _tile_containing(index: int, size: int) -> tuple[Tile, int, int]:
    """The tile (as wide as the tree has it) holding stored hash ``index``, and
    the slice of its hashes that the stored hash is the root of."""
    level, n = split_stored_hash_index(index)
    tile_level, within = divmod(level, TILE_HEIGHT)
    first = n << within  # first bottom hash of the subtree, in the tile's level
    tile_index = first // TILE_WIDTH
    width = tile_width_in_tree(tile_level, tile_index, size)
    start = first - tile_index * TILE_WIDTH
    return Tile(tile_level, tile_index, width), start, start + (1 << within)


def hash_from_tile(tile: Tile, data: bytes, index: int) -> bytes:
    """Stored hash ``index`` computed from the data of ``tile`` that holds it."""
    level, n = split_stored_hash_index(index)
    tile_level, within = divmod(level, TILE_HEIGHT)
    first = n << within
    start = first - tile.index * TILE_WIDTH
    end = start + (1 << within)
    if tile_level != tile.level or start < 0 or end > tile.width:
        raise TileError("bad_tile", f"stored hash {index} is not in {tile.path}")
    if len(data) != tile.width * HASH_SIZE:
        raise TileError("bad_tile", f"{tile.path} must be {tile.width * HASH_SIZE} bytes")
    return _complete_hash(data[start * HASH_SIZE : end * HASH_SIZE])


TileReader = Callable[[Sequence[Tile]], Sequence[bytes]]


class TileHashReader:
    """A ``HashReader`` over tiles fetched from anywhere (a mirror, a CDN, a
    directory) that trusts only a checkpoint's size and root.

    Each read fetches, in one call to ``read_tiles``, the tiles holding the
    hashes asked for, the partial tiles of the tree's right edge and the
    parents of every full tile used; it recomputes the root from the edge and
    checks each full tile against its parent, so a hash it returns is proven
    to be in the tree (the design of Go's ``tlog.TileHashReader``)."""

    def __init__(self, size: int, root: bytes, read_tiles: TileReader) -> None:
        if size < 1:
            raise TileError("bad_size", "an empty tree has no tiles")
        self.size, self.root, self.read_tiles = size, root, read_tiles

    def __call__(self, indexes: Sequence[int]) -> list[bytes]:
        limit = stored_hash_count(self.size)
        for index in indexes:
            if not 0 <= index < limit:
                raise TileError(
                    "index_not_in_tree", f"stored hash {index} is not in a tree of {self.size}"
                )
        frontier = _frontier_indexes(self.size)
        wanted: dict[Tile, None] = {}
        located = {}
        for index in [*frontier, *indexes]:
            tile, _, _ = located[index] = _tile_containing(index, self.size)
            wanted[tile] = None
            # A full tile is vouched for by its entry in the tile above.
            while tile.is_full:
                tile = Tile(
                    tile.level + 1,
                    tile.index // TILE_WIDTH,
                    tile_width_in_tree(tile.level + 1, tile.index // TILE_WIDTH, self.size),
                )
                wanted[tile] = None
        tiles = sorted(wanted, key=lambda t: (-t.level, t.index))  # parents first
        data = list(self.read_tiles(tiles))
        if len(data) != len(tiles):
            raise TileError("bad_tile", f"got {len(data)} tiles for {len(tiles)} asked")
        by_tile = {}
        for tile, blob in zip(tiles, data, strict=True):
            blob = bytes(blob)
            if len(blob) != tile.width * HASH_SIZE:
                raise TileError("bad_tile", f"{tile.path} must be {tile.width * HASH_SIZE} bytes")
            by_tile[tile] = blob
        edge = [hash_from_tile(located[i][0], by_tile[located[i][0]], i) for i in frontier]
        if _fold(edge) != self.root:
            raise TileError("inconsistent_tile", "the tiles do not lead to the checkpoint's root")
        for tile in tiles:  # parents before children: each parent is proven already
            if tile.is_full:
                parent, _, _ = _tile_containing(
                    stored_hash_index(TILE_HEIGHT * (tile.level + 1), tile.index), self.size
                )
                expected = hash_from_tile(
                    parent,
                    by_tile[parent],
                    stored_hash_index(TILE_HEIGHT * (tile.level + 1), tile.index),
                )
                if _complete_hash(by_tile[tile]) != expected:
                    raise TileError("inconsistent_tile", f"{tile.path} does not match its parent")
        return [hash_from_tile(located[i][0], by_tile[located[i][0]], i) for i in indexes]


# --- entry bundles ----------------------------------------------------------


def entry_bundle(entries: Iterable[bytes]) -> bytes:
    """C2SP tlog-tiles entry bundle: each entry prefixed by a big-endian uint16 length."""
    out = bytearray()
    for entry in entries:
        if len(entry) > MAX_ENTRY_SIZE:
            raise TileError("entry_too_large", f"an entry of {len(entry)} bytes does not fit")
        out += len(entry).to_bytes(2, "big") + entry
    return bytes(out)


def parse_entry_bundle(data: bytes, width: int | None = None) -> list[bytes]:
    """The entries of a bundle, refusing truncated or trailing bytes (and, with
    ``width``, any other number of entries)."""
    entries, at = [], 0
    while at < len(data):
        if at + 2 > len(data):
            raise TileError("bad_bundle", "an entry bundle ends inside a length prefix")
        length = int.from_bytes(data[at : at + 2], "big")
        at += 2
        if at + length > len(data):
            raise TileError("bad_bundle", "an entry bundle ends inside an entry")
        entries.append(bytes(data[at : at + length]))
        at += length
        if len(entries) > TILE_WIDTH:
            raise TileError("bad_bundle", "an entry bundle holds more than 256 entries")
    if width is not None and len(entries) != width:
        raise TileError("bad_bundle", f"the bundle holds {len(entries)} entries, not {width}")
    return entries
