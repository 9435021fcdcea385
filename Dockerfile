# One image for every process of the suite: the four nameko services, the gateway and
# portalctl. docker-compose.yml runs one process per container and sets each one's command:
#   nameko run --config config.yaml services.<name>.service   (auth, licensing, billing, notify)
#   nameko run --config config.yaml gateway.service
FROM python:3.11-slim

# VAR_DIR: generated secrets (SECRET_KEY, LICENSE_SIGNING_KEY) and any embedded state live
# there; compose mounts one named volume at /data in every service, so all share the keys.
# PYTHONPATH: the processes run the tree in /app (the files of the repository, data files
# included), not the copy pip installs, which is there for the dependencies and `portalctl`.
ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PYTHONPATH=/app \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_ROOT_USER_ACTION=ignore \
    VAR_DIR=/data

WORKDIR /app

# The pinned dependencies first, read from pyproject.toml itself, so that editing the code
# does not reinstall them.
COPY pyproject.toml ./
RUN python -c "import tomllib; print('\n'.join(tomllib.load(open('pyproject.toml', 'rb'))['project']['dependencies']))" \
        > /tmp/requirements.txt \
    && pip install -r /tmp/requirements.txt \
    && rm /tmp/requirements.txt

# The project itself (packages, migrations, templates; the `portalctl` command). The code
# stays in /app as well: nameko runs from the repository root with config.yaml beside it.
COPY README.md config.yaml ./
COPY common ./common
COPY services ./services
COPY gateway ./gateway
COPY portalctl ./portalctl
RUN pip install --no-deps . \
    && rm -rf build *.egg-info

# Not root: the code is read-only for the user that runs it; only /data is writable.
RUN useradd --system --uid 10001 --user-group --home-dir /nonexistent --no-create-home portal \
    && mkdir -p /data \
    && chown portal:portal /data
USER portal

EXPOSE 8000

CMD ["python", "-c", "print('License Portal image: run one process per container, e.g.\\n  nameko run --config config.yaml services.auth.service\\n  nameko run --config config.yaml gateway.service\\n  portalctl --help\\nor the whole stack with: docker compose up')"]
