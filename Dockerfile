# The image of the compose stack, built once: web (gunicorn), the Celery worker and beat all run
# it. Dependencies and static files are in the image; nothing is installed at start.

# The map previews' browser libraries (Leaflet, Esri Leaflet) from the npm registry, exactly
# as the lockfile says (scripts/ensure-web-assets); only their dist files reach the image. The
# googleanalytics provider's country outlines and codes come from npm the same way.
FROM node:20-slim AS web-assets
WORKDIR /app
COPY scripts/ensure-npm scripts/ensure-web-assets scripts/
COPY koop_app/outputs/pages/vendor/package.json koop_app/outputs/pages/vendor/package-lock.json \
     koop_app/outputs/pages/vendor/
COPY providers/googleanalytics/geodata/package.json \
     providers/googleanalytics/geodata/package-lock.json providers/googleanalytics/geodata/
RUN mkdir -p koop_app/static/koop_app && scripts/ensure-web-assets \
    && scripts/ensure-npm providers/googleanalytics/geodata

FROM python:3.11-slim
# KOOP_STATIC_ROOT: the collected static files live in the image, outside the /app/var volume,
# so a rebuilt image serves its own CSS and scripts (a volume would keep the first copy).
ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 KOOP_STATIC_ROOT=/app/static
WORKDIR /app
COPY requirements.txt .
RUN pip install --no-cache-dir -r requirements.txt \
    && useradd --system --home-dir /app --shell /usr/sbin/nologin koop
COPY . .
COPY --from=web-assets /app/koop_app/static/koop_app/vendor koop_app/static/koop_app/vendor
COPY --from=web-assets /app/providers/googleanalytics/geodata/node_modules \
     providers/googleanalytics/geodata/node_modules
# collectstatic at build: WhiteNoise serves these files (the admin's CSS) with DEBUG off. The
# settings need a secret key and a var folder to load; neither is kept in the image.
# (tests/test_production_stack.py runs this very line.)
RUN var="$(mktemp -d)" \
    && DJANGO_SECRET_KEY=collectstatic-only KOOP_VAR_DIR="$var" \
       python manage.py collectstatic --noinput -v0 \
    && rm -rf "$var"
RUN mkdir -p /app/var /data && chown -R koop /app/var /data
USER koop
EXPOSE 8000
# The web container's start (migrations, the admin user from the environment, gunicorn);
# docker-compose.yml gives the worker and beat their own commands.
CMD ["scripts/start-web"]
