#!/usr/bin/env bash
# Our server and the real Koop, side by side on the same generated data, in one run.
#
#   bench/run.sh                         # points_1m polygons_10k lines_10k
#   DURATION=5 CONCURRENCY=1 bench/run.sh points_100k
#
# Uses ../shared/koop-reference (Koop from npm, its data generator and bench.py) copied to
# $BENCH_DIR (default /tmp/koop-bench). Our server runs under gunicorn on 127.0.0.1:8100, one
# worker with 4 threads, data loaded from the data cache by a separate refresh beforehand.
# Results: $BENCH_DIR/results/{ours,koop}_<dataset>.json and a summary on standard output.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
REF=${KOOP_REF:-$ROOT/../shared/koop-reference}
WORK=${BENCH_DIR:-/tmp/koop-bench}
DURATION=${DURATION:-10}
CONCURRENCY=${CONCURRENCY:-1,8}
PORT=${PORT:-8100}
DATASETS=("$@")
[ ${#DATASETS[@]} -gt 0 ] || DATASETS=(points_1m polygons_10k lines_10k)

mkdir -p "$WORK/results"
[ -d "$WORK/koop-ref" ] || cp -r "$REF" "$WORK/koop-ref"
cd "$WORK/koop-ref"
[ -d node_modules ] || npm ci --silent
command -v wrk >/dev/null || "$ROOT/scripts/ensure-debs" wrk:wrk
for ds in "${DATASETS[@]}"; do [ -f "data/$ds.geojson" ] || python3 gen_data.py "$ds"; done

export KOOP_VAR_DIR=$WORK/var KOOP_DATA_DIR=$WORK/koop-ref/data DJANGO_DEBUG=0
PY=$ROOT/.venv/bin/python
cd "$ROOT"
$PY manage.py migrate -v0
for ds in "${DATASETS[@]}"; do
  start=$(date +%s%N)
  $PY manage.py koop_dataset geojson "$ds" --option "source=$ds.geojson" --id-field id \
      --ttl 864000 --max-record-count 2000 --refresh >/dev/null
  echo "refresh $ds (fetch + normalise + store, separate process): $(( ($(date +%s%N) - start) / 1000000 )) ms"
done

for ds in "${DATASETS[@]}"; do
  start=$(date +%s%N)
  # glibc: big buffers through mmap and few arenas, so a process gives memory back.
  MALLOC_ARENA_MAX=2 MALLOC_MMAP_THRESHOLD_=65536 \
  "$ROOT/.venv/bin/gunicorn" koopsite.wsgi -b "127.0.0.1:$PORT" -w 1 --threads 4 -k gthread \
      --log-level warning &
  GPID=$!
  until curl -s -o /dev/null "http://127.0.0.1:$PORT/rest/info"; do sleep 0.05; done
  curl -s -o /dev/null "http://127.0.0.1:$PORT/geojson/rest/services/$ds/FeatureServer/0/query?where=1%3D1&resultRecordCount=1"
  echo "ours $ds: first answer $(( ($(date +%s%N) - start) / 1000000 )) ms after start"
  WPID=$(pgrep -P "$GPID" | head -1)
  python3 "$WORK/koop-ref/bench.py" --base "http://127.0.0.1:$PORT/geojson/rest" --service "$ds" \
      --duration "$DURATION" --concurrency "$CONCURRENCY" --pid "$WPID" --tool wrk \
      --label ours --json "$WORK/results/ours_$ds.json" --wait-quiet 5 --retries 1
  kill "$GPID"; wait "$GPID" 2>/dev/null || true

  # Koop answers a 2000-feature Esri JSON page in seconds: at concurrency 8 no request ends
  # inside the window (bench.py then has nothing to report), so that query runs at 1 only.
  (cd "$WORK/koop-ref" && WAIT_QUIET=5 RETRIES=1 TOOL=wrk DURATION=$DURATION \
      CONCURRENCY=$CONCURRENCY TAG=a \
      ONLY=layer_info,where_bbox_page,count_where,stats_groupby,geojson_page,ids_only,orderby_top100 \
      ./run_bench.sh "$ds")
  (cd "$WORK/koop-ref" && WAIT_QUIET=5 RETRIES=1 TOOL=wrk DURATION=$((DURATION * 3)) \
      CONCURRENCY=1 TAG=b ONLY=json_page ./run_bench.sh "$ds")
  for tag in a b; do
    cp "$WORK/koop-ref/results/koop_${ds}_dataset_wrk_$tag.json" "$WORK/results/koop_${ds}_$tag.json"
  done
done
$PY "$ROOT/bench/summarize.py" "$WORK/results" "${DATASETS[@]}"
