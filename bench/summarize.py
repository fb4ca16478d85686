"""Side-by-side table of bench.py results: ours vs Koop, medians and throughput ratios.

    python bench/summarize.py /tmp/koop-bench/results points_1m polygons_10k
"""

from __future__ import annotations

import sys
from pathlib import Path

import orjson


def load(path: Path) -> dict[tuple[str, int], dict]:
    if not path.exists():
        return {}
    document = orjson.loads(path.read_bytes())
    return {(r["query"], r["concurrency"]): r for r in document["results"]}


def main(folder: str, datasets: list[str]) -> None:
    for dataset in datasets:
        ours = load(Path(folder) / f"ours_{dataset}.json")
        koop: dict[tuple[str, int], dict] = {}
        for path in sorted(Path(folder).glob(f"koop_{dataset}*.json")):
            koop.update(load(path))
        print(f"\n### {dataset}\n")
        print("| query | c | ours p50 ms | Koop p50 ms | ours req/s | Koop req/s | ratio | "
              "ours peak RSS MiB | Koop peak RSS MiB |")
        print("|---|---|---|---|---|---|---|---|---|")
        for key in ours:
            mine, theirs = ours[key], koop.get(key, {})
            ratio = (mine["rps"] / theirs["rps"]) if theirs.get("rps") else float("nan")
            print(f"| {key[0]} | {key[1]} | {mine['p50_ms']} | {theirs.get('p50_ms', '-')} | "
                  f"{mine['rps']:.1f} | {theirs.get('rps', 0):.2f} | {ratio:.0f}x | "
                  f"{mine.get('server_max_rss_mib', '-')} | "
                  f"{theirs.get('server_max_rss_mib', '-')} |")


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2:])
