"""RFC 9162 Merkle tree verification: leaf and node hashes, inclusion proofs
(§2.1.3.2) and consistency proofs (§2.1.4.2). Standard library only.

Our own copy, written from the RFC, so that checking the portal's log does
not depend on the portal's code."""

from __future__ import annotations

import hashlib
from collections.abc import Sequence

from .errors import VerifyError

HASH_SIZE = 32


def leaf_hash(data: bytes) -> bytes:
    """SHA-256(0x00 || data)."""
    return hashlib.sha256(b"\x00" + data).digest()


def node_hash(left: bytes, right: bytes) -> bytes:
    """SHA-256(0x01 || left || right)."""
    return hashlib.sha256(b"\x01" + left + right).digest()


def _check_hashes(code: str, hashes: Sequence[bytes]) -> None:
    for h in hashes:
        if not isinstance(h, bytes) or len(h) != HASH_SIZE:
            raise VerifyError(code, "every hash in a proof must be 32 bytes")


def verify_inclusion(
    proof: Sequence[bytes], *, index: int, size: int, leaf: bytes, root: bytes
) -> None:
    """Raise ``VerifyError("inclusion_failed")`` unless ``leaf`` (a leaf
    *hash*) is leaf ``index`` of the tree of ``size`` leaves with ``root``."""
    code = "inclusion_failed"
    if not 0 <= index < size:
        raise VerifyError(code, f"leaf {index} is not in a tree of {size} leaves")
    _check_hashes(code, [root, leaf, *proof])
    fn, sn, r = index, size - 1, leaf
    for p in proof:
        if sn == 0:
            raise VerifyError(code, "the inclusion proof is too long")
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
        raise VerifyError(code, "the inclusion proof is too short")
    if r != root:
        raise VerifyError(code, "the inclusion proof does not lead to the checkpoint's root")


def verify_consistency(
    proof: Sequence[bytes], *, old_size: int, old_root: bytes, new_size: int, new_root: bytes
) -> None:
    """Raise ``VerifyError("consistency_failed")`` unless the tree of
    ``new_size`` leaves with ``new_root`` extends (only appends to) the tree
    of ``old_size`` leaves with ``old_root``."""
    code = "consistency_failed"
    if not 0 <= old_size <= new_size:
        raise VerifyError("shrinking_tree", f"a tree of {new_size} cannot extend one of {old_size}")
    _check_hashes(code, [old_root, new_root, *proof])
    if old_size == 0:
        if proof:
            raise VerifyError(code, "a proof from the empty tree must be empty")
        return
    if old_size == new_size:
        if proof:
            raise VerifyError(code, "a proof between equal sizes must be empty")
        if old_root != new_root:
            raise VerifyError(code, f"two trees of size {old_size} have different roots")
        return
    path = list(proof)
    if old_size & (old_size - 1) == 0:  # a power of two: the old root is a node of the new tree
        path.insert(0, old_root)
    if not path:
        raise VerifyError(code, "the consistency proof is empty")
    fn, sn = old_size - 1, new_size - 1
    while fn & 1:
        fn >>= 1
        sn >>= 1
    fr = sr = path[0]
    for c in path[1:]:
        if sn == 0:
            raise VerifyError(code, "the consistency proof is too long")
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
        raise VerifyError(code, "the consistency proof is too short")
    if fr != old_root:
        raise VerifyError(code, "the consistency proof does not lead to the old root")
    if sr != new_root:
        raise VerifyError(code, "the consistency proof does not lead to the new root")


def root_from_leaf_hashes(leaf_hashes: Sequence[bytes]) -> bytes:
    """The root of the tree of these leaf hashes (RFC 9162 MTH), in one pass:
    a stack of complete subtrees, merged as each fills up."""
    if not leaf_hashes:
        return hashlib.sha256(b"").digest()
    stack: list[tuple[int, bytes]] = []  # (subtree size, hash), sizes decreasing
    for h in leaf_hashes:
        size, node = 1, h
        while stack and stack[-1][0] == size:
            left_size, left = stack.pop()
            size, node = left_size + size, node_hash(left, node)
        stack.append((size, node))
    _, root = stack[-1]
    for _, left in reversed(stack[:-1]):
        root = node_hash(left, root)
    return root
