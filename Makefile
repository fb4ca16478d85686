# The two commands of the README: `make run` (demo server) and `make test` (whole suite).
# `make run` serves with DEBUG off (DJANGO_DEBUG=1 turns it on) on waitress (scripts/serve).
PYTHON ?= python3.11
VENV ?= .venv
BIN := $(VENV)/bin
HOST ?= 127.0.0.1
PORT ?= 8000

.PHONY: run test fuzz lint venv clean web-assets

$(BIN)/.installed: requirements.txt
	scripts/bootstrap "$(PYTHON)" "$(VENV)"
	$(BIN)/pip install --disable-pip-version-check -q -r requirements.txt
	touch $@

venv: $(BIN)/.installed

# The map previews' browser libraries (Leaflet, Esri Leaflet) come from the npm registry, and
# so do the googleanalytics provider's country outlines (world-atlas).
web-assets:
	scripts/ensure-debs node:nodejs npm:npm
	scripts/ensure-web-assets
	scripts/ensure-npm providers/googleanalytics/geodata

run: venv web-assets
	$(BIN)/python manage.py migrate --noinput
	$(BIN)/python manage.py koop_demo
	$(BIN)/python manage.py koop_admin_user
	scripts/run-embedded $(BIN)/python $(HOST):$(PORT)

lint: venv
	$(BIN)/ruff check .

test: venv
	scripts/ensure-debs ogr2ogr:gdal-bin redis-server:redis-server openssl:openssl \
		chromium:chromium node:nodejs npm:npm /usr/sbin/nginx:nginx curl:curl \
		/usr/lib/postgresql/15/bin/initdb:postgresql pg_isready:postgresql-client \
		/usr/share/postgresql/15/extension/postgis.control:postgresql-15-postgis-3
	scripts/ensure-npm tests/clients/arcgis_js
	scripts/ensure-npm tests/clients/esri_leaflet
	scripts/ensure-npm tests/clients/maplibre
	scripts/ensure-npm tests/encoders/pbf_node
	scripts/ensure-npm providers/googleanalytics/geodata
	scripts/ensure-web-assets
	$(BIN)/ruff check .
	$(BIN)/python -m pytest

# The generated-request suite at full size (>= 10,000 requests); its summary goes to var/.
FUZZ_EXAMPLES ?= 1000
fuzz: venv
	mkdir -p var
	KOOP_FUZZ_EXAMPLES=$(FUZZ_EXAMPLES) KOOP_FUZZ_SUMMARY=var/fuzz-summary.json \
		$(BIN)/python -m pytest -q tests/outputs/geoservices/test_generated_requests.py
	cat var/fuzz-summary.json

clean:
	rm -rf $(VENV) var .pytest_cache
