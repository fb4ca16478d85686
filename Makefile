# The two commands of the README: `make run` (demo server) and `make test` (whole suite).
PYTHON ?= python3.11
VENV ?= .venv
BIN := $(VENV)/bin
HOST ?= 127.0.0.1
PORT ?= 8000

.PHONY: run test lint venv clean

$(BIN)/.installed: requirements.txt
	scripts/bootstrap "$(PYTHON)" "$(VENV)"
	$(BIN)/pip install --disable-pip-version-check -q -r requirements.txt
	touch $@

venv: $(BIN)/.installed

run: venv
	DJANGO_DEBUG=$${DJANGO_DEBUG:-1} $(BIN)/python manage.py migrate --noinput
	DJANGO_DEBUG=$${DJANGO_DEBUG:-1} $(BIN)/python manage.py koop_demo
	DJANGO_DEBUG=$${DJANGO_DEBUG:-1} $(BIN)/python manage.py koop_admin_user
	DJANGO_DEBUG=$${DJANGO_DEBUG:-1} scripts/run-embedded $(BIN)/python $(HOST):$(PORT)

lint: venv
	$(BIN)/ruff check .

test: venv
	scripts/ensure-debs ogr2ogr:gdal-bin redis-server:redis-server chromium:chromium \
		node:nodejs npm:npm
	scripts/ensure-npm tests/clients/arcgis_js
	$(BIN)/ruff check .
	$(BIN)/python -m pytest

clean:
	rm -rf $(VENV) var .pytest_cache
