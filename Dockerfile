# The image of the compose stack: dependencies installed once at build, not at every start.
FROM python:3.11-slim
ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1
WORKDIR /app
COPY requirements.txt .
RUN pip install --no-cache-dir -r requirements.txt \
    && useradd --system --home-dir /app --shell /usr/sbin/nologin koop
COPY . .
RUN mkdir -p /app/var /data && chown -R koop /app/var /data
USER koop
