# syntax=docker/dockerfile:1
# objstore-permission-exporter container image.
#   docker build -t objstore-permission-exporter:0.1.0 .
# Dependencies come only from requirements.lock (hash-checked wheels; regenerate with scripts/lock-requirements.sh).
# The image runs as a numeric non-root user and writes nothing at runtime, so it works with
# readOnlyRootFilesystem: true (see deploy/base/deployment.yaml).
# For reproducible builds pin the base by digest as well (python:3.11-slim-bookworm@sha256:...), e.g. with Renovate.

FROM python:3.11-slim-bookworm AS build
ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_NO_INPUT=1
WORKDIR /src
RUN python -m venv /opt/venv
COPY requirements.lock ./
RUN /opt/venv/bin/pip install --require-hashes --no-deps --only-binary=:all: -r requirements.lock
COPY pyproject.toml README.md ./
COPY exporter ./exporter
# The project itself, without dependencies (they all came from the lock above); pip byte-compiles it.
# (Only the build backend, setuptools>=68 from pyproject's build-system, is fetched unpinned here; it does not
# end up in the image.) The venv's pip and setuptools are not needed at runtime.
RUN /opt/venv/bin/pip install --no-deps . \
    && /opt/venv/bin/pip check \
    && /opt/venv/bin/pip uninstall --yes pip setuptools

FROM python:3.11-slim-bookworm
ARG VERSION=0.1.0
ARG REVISION=unknown
ARG CREATED=unknown
LABEL org.opencontainers.image.title="objstore-permission-exporter" \
      org.opencontainers.image.description="Prometheus exporter that probes every S3 operation each Thanos component needs, under that component's own identity." \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.revision="${REVISION}" \
      org.opencontainers.image.created="${CREATED}" \
      org.opencontainers.image.licenses="Apache-2.0" \
      org.opencontainers.image.base.name="docker.io/library/python:3.11-slim-bookworm"
# A named passwd entry for the numeric user, so that tools resolving the uid find one; no home directory.
RUN groupadd --system --gid 10001 exporter \
    && useradd --system --uid 10001 --gid 10001 --no-create-home --home-dir /nonexistent \
       --shell /usr/sbin/nologin exporter
COPY --from=build /opt/venv /opt/venv
# No runtime writes: bytecode was compiled at build time, output is unbuffered, HOME does not exist.
ENV PATH="/opt/venv/bin:${PATH}" \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    HOME=/nonexistent
USER 10001:10001
EXPOSE 9832
ENTRYPOINT ["objstore-permission-exporter", "serve", "--config.file=/etc/objstore-permission-exporter/config.yml"]
CMD ["--web.listen-address=:9832"]
