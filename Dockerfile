# The image of the compose stack: dependencies installed once at build, not at every start.

# The map previews' browser libraries (Leaflet, Esri Leaflet) from the npm registry, exactly
# as the lockfile says (scripts/ensure-web-assets); only their dist files reach the image.
FROM node:20-slim AS web-assets
WORKDIR /app
COPY scripts/ensure-npm scripts/ensure-web-assets scripts/
COPY koop_app/outputs/pages/vendor/package.json koop_app/outputs/pages/vendor/package-lock.json \
     koop_app/outputs/pages/vendor/
RUN mkdir -p koop_app/static/koop_app && scripts/ensure-web-assets

FROM python:3.11-slim
ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1
WORKDIR /app
COPY requirements.txt .
RUN pip install --no-cache-dir -r requirements.txt \
    && useradd --system --home-dir /app --shell /usr/sbin/nologin koop
COPY . .
COPY --from=web-assets /app/koop_app/static/koop_app/vendor koop_app/static/koop_app/vendor
RUN mkdir -p /app/var /data && chown -R koop /app/var /data
USER koop
