#!/usr/bin/env bash
# The client request shapes (bench/shapes.py) on our server and on the real Koop, in one run.
#
#   flock /work/wt/heavy.lock bench/shapes.sh                   # the default datasets below
#   DURATION=3 CONCURRENCY=1 bench/shapes.sh points_10k polygons_10k
#   ONLY=object_ids_500,tile_3857 bench/shapes.sh points_1m
#
# Data: ../shared/koop-reference copied to $SHAPES_DIR/koop-ref (default /tmp/shapes), its
# gen_data.py extended by bench/shapes.py with more sizes (points_10k, polygons_100k, ...).
# Ours: registered with `manage.py koop_dataset ... --refresh` into $SHAPES_DIR/var, served by
# gunicorn -w 1 --threads 4 -k gthread on 127.0.0.1:$PORT (8450); Koop: server.js on $KOOP_PORT
# (8480), the parsed file kept in memory (KOOP_CACHE_MODE=dataset). One server of each per
# dataset, one after the other. Results: $SHAPES_DIR/results/{ours,koop}_<dataset>.json, then
# a Markdown summary with the geometric means.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
REF=${KOOP_REF:-$ROOT/../shared/koop-reference}
WORK=${SHAPES_DIR:-/tmp/shapes}
DURATION=${DURATION:-4}
CONCURRENCY=${CONCURRENCY:-1,8}
PORT=${PORT:-8450}
KOOP_PORT=${KOOP_PORT:-8480}
DATASETS=("$@")
[ ${#DATASETS[@]} -gt 0 ] || DATASETS=(points_10k points_100k points_1m polygons_10k
                                       polygons_100k lines_10k)
ONLY_ARGS=()
[ -z "${ONLY:-}" ] || ONLY_ARGS=(--only "$ONLY")

mkdir -p "$WORK/results"
if [ ! -d "$WORK/koop-ref" ]; then cp -r "$REF" "$WORK/koop-ref"; chmod -R u+w "$WORK/koop-ref"; fi
(cd "$WORK/koop-ref" && { [ -d node_modules ] || npm ci --silent; })
command -v wrk >/dev/null || "$ROOT/scripts/ensure-debs" wrk:wrk
SHAPES_DIR=$WORK python3 "$ROOT/bench/shapes.py" gen "${DATASETS[@]}"

export KOOP_VAR_DIR=$WORK/var KOOP_DATA_DIR=$WORK/koop-ref/data DJANGO_DEBUG=0 SHAPES_DIR=$WORK
PY=$ROOT/.venv/bin/python
cd "$ROOT"
$PY manage.py migrate -v0
for ds in "${DATASETS[@]}"; do
  if [ "${REFRESH:-0}" = 1 ] || ! $PY manage.py shell -c "
from koop_app.models import Dataset; import sys
sys.exit(0 if Dataset.objects.filter(dataset_id='$ds').exists() else 1)" 2>/dev/null; then
    start=$(date +%s%N)
    $PY manage.py koop_dataset geojson "$ds" --option "source=$ds.geojson" --id-field id \
        --ttl 8640000 --max-record-count 2000 --refresh >/dev/null 2>&1
    echo "refresh $ds: $(( ($(date +%s%N) - start) / 1000000 )) ms"
  fi
done

for ds in "${DATASETS[@]}"; do
  MALLOC_ARENA_MAX=2 MALLOC_MMAP_THRESHOLD_=65536 \
  "$ROOT/.venv/bin/gunicorn" koopsite.wsgi -b "127.0.0.1:$PORT" -w 1 --threads 4 -k gthread \
      --log-level warning 2>"$WORK/results/ours_$ds.log" &
  GPID=$!
  until curl -s -o /dev/null "http://127.0.0.1:$PORT/rest/info"; do sleep 0.05; done
  curl -s -o /dev/null "http://127.0.0.1:$PORT/geojson/rest/services/$ds/FeatureServer/0?f=json"
  WPID=$(pgrep -P "$GPID" | head -1)
  python3 "$ROOT/bench/shapes.py" run --base "http://127.0.0.1:$PORT/geojson/rest" \
      --service "$ds" --label ours --pid "$WPID" --duration "$DURATION" \
      --concurrency "$CONCURRENCY" --json "$WORK/results/ours_$ds.json" "${ONLY_ARGS[@]}"
  kill "$GPID"; wait "$GPID" 2>/dev/null || true

  cd "$WORK/koop-ref"
  PORT=$KOOP_PORT KOOP_CACHE_MODE=dataset node server.js >"$WORK/results/koop_$ds.log" 2>&1 &
  KPID=$!
  cd "$ROOT"
  until curl -s -o /dev/null "http://127.0.0.1:$KOOP_PORT/status"; do sleep 0.1; done
  curl -s -o /dev/null "http://127.0.0.1:$KOOP_PORT/file-geojson/rest/services/$ds/FeatureServer/0?f=json"
  python3 "$ROOT/bench/shapes.py" run --base "http://127.0.0.1:$KOOP_PORT/file-geojson/rest" \
      --service "$ds" --label koop --pid "$KPID" --duration "$DURATION" \
      --concurrency "$CONCURRENCY" --json "$WORK/results/koop_$ds.json" "${ONLY_ARGS[@]}"
  kill "$KPID"
  wait "$KPID" 2>/dev/null || true
done
python3 "$ROOT/bench/shapes.py" summary "$WORK/results" "${DATASETS[@]}"
