# syntax=docker/dockerfile:1
# Build stage: install vidgate and its dependencies into a virtualenv.
FROM python:3.11-slim AS build
WORKDIR /src
RUN python -m venv /opt/venv
ENV PATH=/opt/venv/bin:$PATH PIP_NO_CACHE_DIR=1
COPY pyproject.toml README.md ./
COPY app ./app
RUN pip install .

# Runtime stage: the virtualenv (the migrations ship inside the package), a non-root user.
FROM python:3.11-slim
# a CJK font (1.6 MB) so the sandbox draws Chinese prompts as text, not boxes
RUN apt-get update && apt-get install -y --no-install-recommends fonts-wqy-microhei \
    && rm -rf /var/lib/apt/lists/*
RUN useradd --create-home --uid 10001 vidgate && mkdir -p /data && chown vidgate /data
COPY --from=build /opt/venv /opt/venv
WORKDIR /srv/vidgate
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    VIDGATE_STORAGE_DIR=/data
USER vidgate
VOLUME ["/data"]
EXPOSE 8000
HEALTHCHECK --interval=15s --timeout=3s CMD python -c "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8000/healthz')" || exit 1
CMD ["vidgate", "serve", "--host", "0.0.0.0", "--port", "8000"]
