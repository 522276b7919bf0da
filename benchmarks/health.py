"""Node health model evaluation (issue 14 item 7), as a benchmark.

Generates labelled synthetic node traces (steady, diurnal, gradual
degradation, flapping, partial outage, full outage, traffic surge, clock
skew) and replays them through the real model next to a fixed-threshold
baseline; see benchmarks/health_eval.py. Pure Python: needs no database, so
it also runs alone with ``python -m benchmarks.health [--quick]``.

Targets: precision >= 0.9 and recall >= 0.9 on the degradation classes, no
alarm on the surge and diurnal traces, gradual degradation detected at least
5 minutes (median) before the fixed threshold.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from .harness import log
from .health_eval import evaluate

FULL_SEEDS = 30
QUICK_SEEDS = 5


def params_for(args) -> dict:
    return {"seeds": QUICK_SEEDS if args.quick else FULL_SEEDS}


def run(ctx, params: dict, members=None) -> dict:
    result = evaluate(range(params["seeds"]))
    m = result["model"]
    log(
        f"health: precision {m['precision']}, recall {m['recall']}, "
        f"gradual lead {result['gradual_lead_minutes_median']} min over {result['traces']} traces"
    )
    targets = result.pop("targets")
    return {
        "parameters": params,
        "conditions": "synthetic traces, one observation per 30 s detection pass; "
        "deterministic per seed (rerun gives the same figures)",
        "results": result,
        "targets": targets,
    }


def summary(result: dict) -> str:
    r = result["results"]
    return (
        f"health: model precision {r['model']['precision']} recall {r['model']['recall']} "
        f"(fixed threshold {r['fixed_threshold']['precision']} / "
        f"{r['fixed_threshold']['recall']}), median minutes to detect "
        f"{r['model']['median_minutes_to_detect']}, gradual lead "
        f"{r['gradual_lead_minutes_median']} min"
    )


def main(argv: list[str] | None = None) -> int:
    """Standalone: no services needed."""
    import json
    from datetime import UTC, datetime

    from . import harness

    parser = argparse.ArgumentParser(prog="python -m benchmarks.health")
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--out", type=Path, default=harness.RESULTS_DIR)
    args = parser.parse_args(argv)
    started = time.monotonic()
    result = run(None, params_for(args))
    result["benchmark_wall_s"] = round(time.monotonic() - started, 1)
    payload = {
        "benchmark": "health",
        "timestamp": datetime.now(UTC).isoformat(timespec="seconds"),
        "git_revision": harness.git_revision(),
        "quick": args.quick,
        "machine": harness.machine_info(),
        **result,
    }
    args.out.mkdir(parents=True, exist_ok=True)
    path = args.out / ("health.quick.json" if args.quick else "health.json")
    path.write_text(json.dumps(payload, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    print(summary(result))
    for t in result["targets"]:
        print(
            f"    target {t['metric']} {t['target']}: {t['value']} -> {'met' if t['met'] else 'MISSED'}"
        )
    return 0 if all(t["met"] for t in result["targets"]) else 1


if __name__ == "__main__":
    sys.exit(main())
