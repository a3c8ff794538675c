# Mediation session server.
#   docker build -t mediation-server .
#   docker run -p 8080:8080 -v mediation-data:/var/lib/mediation mediation-server

# The browser client's npm dependencies are resolved from the lockfile at build time; nothing is
# fetched from a CDN when the server runs.
FROM node:20-bookworm-slim AS web
WORKDIR /web
COPY web_client/package.json web_client/package-lock.json ./
RUN npm ci --no-audit --no-fund
COPY web_client/ ./
RUN npm run build \
 && rm -rf node_modules test

# The rooms' selective forwarding unit: Debian's Janus with the VideoRoom plugin (deploy/compose.yaml
# builds this target as the "janus" service; docs/deploy.md). Its configuration is mounted at run time.
FROM debian:bookworm-slim AS janus
RUN apt-get update \
 && apt-get install -y --no-install-recommends janus \
 && rm -rf /var/lib/apt/lists/* \
 && groupadd --system --gid 10002 janus \
 && useradd --system --uid 10002 --gid janus --no-create-home --shell /usr/sbin/nologin janus
USER janus
CMD ["janus", "-C", "/etc/janus-mediation/janus.jcfg", "-F", "/etc/janus-mediation", "-o"]

FROM python:3.11-slim-bookworm

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

# aiortc, av, cryptography, pyrage and asyncpg ship self-contained manylinux wheels
# (FFmpeg, libvpx, opus, OpenSSL bundled), so no extra runtime libraries. Agreement PDFs embed a CJK
# font: Noto CJK, found through fontconfig.
RUN apt-get update \
 && apt-get install -y --no-install-recommends fonts-noto-cjk fontconfig \
 && rm -rf /var/lib/apt/lists/*
RUN groupadd --system --gid 10001 mediation \
 && useradd --system --uid 10001 --gid mediation --home-dir /var/lib/mediation \
        --no-create-home --shell /usr/sbin/nologin mediation \
 && mkdir -p /var/lib/mediation \
 && chown mediation:mediation /var/lib/mediation \
 && chmod 0700 /var/lib/mediation

WORKDIR /usr/src/mediation
COPY pyproject.toml README.md ./
COPY server/ server/
COPY signaling/ signaling/
COPY recording/ recording/
RUN pip install --no-cache-dir . \
 && cd / && rm -rf /usr/src/mediation
COPY --from=web /web /usr/share/mediation/web_client

ENV MEDIATION_DATA_DIR=/var/lib/mediation \
    MEDIATION_WEB_CLIENT_DIR=/usr/share/mediation/web_client \
    MEDIATION_HOST=0.0.0.0 \
    MEDIATION_PORT=8080

USER mediation
WORKDIR /var/lib/mediation
VOLUME /var/lib/mediation
EXPOSE 8080

HEALTHCHECK --interval=30s --timeout=5s --start-period=20s --retries=3 \
    CMD ["python", "-c", "import sys, urllib.request; sys.exit(0 if urllib.request.urlopen('http://127.0.0.1:8080/healthz', timeout=4).status == 200 else 1)"]

CMD ["mediation-server"]
