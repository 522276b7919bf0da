"""The transparency log's tree code alone (issue 23), as a benchmark.

Measures ``compensation.tlog`` and ``compensation.tlog_notes`` without a
database: appending 100,000 leaves (at once, and in batches of 1,000 as a
sequencer would integrate them), recomputing the root from the leaves (what
``verify_ledger`` does per entry), generating and verifying inclusion and
consistency proofs, signing and opening checkpoints, and the size of a
proof and of a version 2 receipt's ``log`` object at 100,000, 1,000,000 and
10,000,000 leaves. The 100,000 and 1,000,000 trees are built for real; the
10,000,000 figures are computed from the shape of the proof (which hashes
RFC 9162's PATH holds: floor or ceil of log2 n), not from a built tree.

Pure Python: also runs alone with ``python -m benchmarks.tlog [--quick]``.
"""

from __future__ import annotations

import argparse
import base64
import json
import random
import statistics
import sys
import time
from pathlib import Path

from compensation import tlog, tlog_notes

from .harness import log, percentile, target

FULL = {"leaves": 100_000, "batch": 1_000, "proofs": 2_000, "big_tree": 1_000_000}
QUICK = {"leaves": 10_000, "batch": 1_000, "proofs": 300, "big_tree": 20_000}
COMPUTED_SIZES = (100_000, 1_000_000, 10_000_000)
ORIGIN = "portal.example.com/ledger"


def params_for(args) -> dict:
    return dict(QUICK if args.quick else FULL)


def _leaf(i: int) -> bytes:
    # About the size of a ledger entry's canonical JSON body.
    return json.dumps(
        {
            "seq": i + 1,
            "member": f"M{i % 100_000:06d}",
            "kind": "credit",
            "minutes": i % 1440,
            "expires_before": "2026-11-26T10:00:00+00:00",
            "expires_after": "2026-11-26T11:30:00+00:00",
            "at": "2026-11-26T10:05:00+00:00",
            "policy_version": 7,
            "reason": "incident",
            "prev": "0" * 64,
        },
        separators=(",", ":"),
        sort_keys=True,
    ).encode()


def _us(samples: list[float]) -> dict:
    return {
        "p50_us": round(percentile(samples, 50) * 1e6, 1),
        "p99_us": round(percentile(samples, 99) * 1e6, 1),
        "mean_us": round(statistics.fmean(samples) * 1e6, 1),
    }


def _timed(fn, *args):
    started = time.perf_counter()
    out = fn(*args)
    return out, time.perf_counter() - started


def _proof_hash_count(index: int, size: int) -> int:
    return len(tlog._inclusion_ranges(index, size))


def _receipt_log_bytes(index: int, leaf: bytes, proof_hashes: int, checkpoint: str) -> int:
    """Bytes of a version 2 receipt's ``log`` object (compact JSON)."""
    body = {
        "index": index,
        "leaf_data": base64.b64encode(leaf).decode(),
        "proof": [base64.b64encode(b"\0" * 32).decode()] * proof_hashes,
        "checkpoint": checkpoint,
    }
    return len(json.dumps(body, separators=(",", ":")).encode())


def run(ctx, params: dict, members=None) -> dict:
    n, batch = params["leaves"], params["batch"]
    leaves = [_leaf(i) for i in range(n)]

    # Append all at once: leaf hashing plus the stored hashes it completes.
    store = tlog.MemoryHashStore()
    _, bulk_s = _timed(store.append, leaves)
    written = len(store.hashes)
    log(f"tlog: appended {n} leaves in {bulk_s:.2f} s ({written} stored hashes)")

    # Append in batches: each batch reads only the frontier, writes only new hashes.
    batched = tlog.MemoryHashStore()
    started = time.perf_counter()
    for at in range(0, n, batch):
        batched.append(leaves[at : at + batch])
    batched_s = time.perf_counter() - started
    assert batched.hashes == store.hashes

    # Recompute the root from the entries alone, streaming (verify_ledger's job).
    started = time.perf_counter()
    check = tlog.MemoryHashStore()
    for at in range(0, n, 10_000):
        check.append(leaves[at : at + 10_000])
    recomputed = check.tree_hash()
    recompute_s = time.perf_counter() - started
    root = store.tree_hash()
    assert recomputed == root
    _, tree_hash_s = _timed(store.tree_hash)

    rng = random.Random(23)
    prove, verify, sizes = [], [], []
    for _ in range(params["proofs"]):
        index = rng.randrange(n)
        proof, took = _timed(store.inclusion_proof, index)
        prove.append(took)
        sizes.append(len(proof) * tlog.HASH_SIZE)
        leaf_hash = tlog.leaf_hash(leaves[index])
        _, took = _timed(tlog.check_inclusion, proof, n, root, index, leaf_hash)
        verify.append(took)
    cons_prove, cons_verify, cons_sizes = [], [], []
    for _ in range(params["proofs"]):
        old = rng.randrange(1, n)
        proof, took = _timed(store.consistency_proof, old)
        cons_prove.append(took)
        cons_sizes.append(len(proof) * tlog.HASH_SIZE)
        old_root = store.tree_hash(old)
        _, took = _timed(tlog.check_consistency, proof, old, old_root, n, root)
        cons_verify.append(took)

    # Checkpoints: sign and open (Ed25519, C2SP signed note).
    signer = tlog_notes.Signer.generate(ORIGIN)
    checkpoint = tlog_notes.Checkpoint(ORIGIN, n, root)
    signs, opens = [], []
    for _ in range(200):
        note, took = _timed(tlog_notes.sign_checkpoint, checkpoint, signer)
        signs.append(took)
        _, took = _timed(tlog_notes.open_checkpoint, note, signer.verifier)
        opens.append(took)

    # A bigger tree built for real: proof time does not grow with n.
    big_n = params["big_tree"]
    big = tlog.MemoryHashStore()
    started = time.perf_counter()
    for at in range(0, big_n, 50_000):
        big.append(_leaf(i) for i in range(at, min(big_n, at + 50_000)))
    big_build_s = time.perf_counter() - started
    big_root = big.tree_hash()
    big_prove, big_verify, big_sizes = [], [], []
    for _ in range(params["proofs"]):
        index = rng.randrange(big_n)
        proof, took = _timed(big.inclusion_proof, index)
        big_prove.append(took)
        big_sizes.append(len(proof) * tlog.HASH_SIZE)
        _, took = _timed(
            tlog.check_inclusion, proof, big_n, big_root, index, tlog.leaf_hash(_leaf(index))
        )
        big_verify.append(took)
    del big

    computed = {}
    for size in COMPUTED_SIZES:
        cp = tlog_notes.sign_checkpoint(tlog_notes.Checkpoint(ORIGIN, size, b"\0" * 32), signer)
        counts = [_proof_hash_count(i, size) for i in (0, size // 2, size - 1)]
        computed[str(size)] = {
            "proof_hashes_first_middle_last": counts,
            "proof_bytes_max": max(counts) * tlog.HASH_SIZE,
            "receipt_log_json_bytes_max": max(
                _receipt_log_bytes(i, _leaf(i), c, cp)
                for i, c in zip((0, size // 2, size - 1), counts, strict=True)
            ),
        }

    results = {
        "append_bulk": {
            "leaves": n,
            "stored_hashes_written": written,
            "seconds": round(bulk_s, 3),
            "leaves_per_s": round(n / bulk_s),
            "stored_hashes_per_s": round(written / bulk_s),
        },
        "append_batched": {
            "batch": batch,
            "seconds": round(batched_s, 3),
            "leaves_per_s": round(n / batched_s),
            "stored_hashes_per_s": round(written / batched_s),
        },
        "recompute_root_from_entries": {
            "seconds": round(recompute_s, 3),
            "entries_per_s": round(n / recompute_s),
        },
        "tree_hash_us": round(tree_hash_s * 1e6, 1),
        "inclusion_proof": {
            "tree_size": n,
            "generate": _us(prove),
            "verify": _us(verify),
            "bytes_max": max(sizes),
            "bytes_mean": round(statistics.fmean(sizes), 1),
        },
        "consistency_proof": {
            "tree_size": n,
            "generate": _us(cons_prove),
            "verify": _us(cons_verify),
            "bytes_max": max(cons_sizes),
        },
        "checkpoint": {
            "sign": _us(signs),
            "open_and_verify": _us(opens),
            "note_bytes": len(tlog_notes.sign_checkpoint(checkpoint, signer).encode()),
        },
        "big_tree": {
            "leaves": big_n,
            "build_seconds": round(big_build_s, 2),
            "inclusion_generate": _us(big_prove),
            "inclusion_verify": _us(big_verify),
            "proof_bytes_max": max(big_sizes),
        },
        "computed_sizes": computed,
    }
    ten_million = computed["10000000"]
    targets = [
        target(
            "receipt log object at 10M leaves, bytes",
            ten_million["receipt_log_json_bytes_max"],
            below=4096 + 1,
        ),
        target(
            f"inclusion proof p99 ms at {big_n} leaves (in-memory store)",
            round(percentile(big_prove, 99) * 1000, 3),
            below=10,
        ),
        target(
            "tree append, leaves/s (bulk, tree code alone)",
            results["append_bulk"]["leaves_per_s"],
            at_least=20_000,
        ),
        target(
            "recompute root from entries, entries/s",
            results["recompute_root_from_entries"]["entries_per_s"],
            at_least=100_000,
        ),
    ]
    log(summary({"results": results}))
    return {
        "parameters": params,
        "conditions": "tree code alone, in-memory MemoryHashStore, one Python process; "
        "leaves ~300-byte canonical JSON bodies; 10M figures computed from the proof shape",
        "results": results,
        "targets": targets,
    }


def summary(result: dict) -> str:
    r = result["results"]
    return (
        f"tlog: append {r['append_bulk']['leaves_per_s']:,} leaves/s "
        f"({r['append_bulk']['stored_hashes_per_s']:,} hashes/s), batched "
        f"{r['append_batched']['leaves_per_s']:,}/s; root from entries "
        f"{r['recompute_root_from_entries']['entries_per_s']:,}/s; inclusion at "
        f"{r['inclusion_proof']['tree_size']:,}: generate p99 "
        f"{r['inclusion_proof']['generate']['p99_us']} us, verify p99 "
        f"{r['inclusion_proof']['verify']['p99_us']} us, {r['inclusion_proof']['bytes_max']} B; "
        f"at {r['big_tree']['leaves']:,}: p99 {r['big_tree']['inclusion_generate']['p99_us']} us; "
        f"10M receipt log {r['computed_sizes']['10000000']['receipt_log_json_bytes_max']} B"
    )


def main(argv: list[str] | None = None) -> int:
    """Standalone: no services needed."""
    from datetime import UTC, datetime

    from . import harness

    parser = argparse.ArgumentParser(prog="python -m benchmarks.tlog")
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--out", type=Path, default=harness.RESULTS_DIR)
    args = parser.parse_args(argv)
    started = time.monotonic()
    load_before = harness.load_average()
    result = run(None, params_for(args))
    result["benchmark_wall_s"] = round(time.monotonic() - started, 1)
    result["load_average_before"] = load_before
    payload = {
        "benchmark": "tlog",
        "timestamp": datetime.now(UTC).isoformat(timespec="seconds"),
        "git_revision": harness.git_revision(),
        "quick": args.quick,
        "machine": harness.machine_info(),
        "load_average_after": harness.load_average(),
        **result,
    }
    args.out.mkdir(parents=True, exist_ok=True)
    path = args.out / ("tlog.quick.json" if args.quick else "tlog.json")
    path.write_text(json.dumps(payload, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    print(summary(result))
    for t in result["targets"]:
        print(
            f"    target {t['metric']} {t['target']}: {t['value']} -> {'met' if t['met'] else 'MISSED'}"
        )
    return 0 if all(t["met"] for t in result["targets"]) else 1


if __name__ == "__main__":
    sys.exit(main())
