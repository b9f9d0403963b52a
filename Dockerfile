# thoughtgate-ts: the governance proxy as an HTTP sidecar (ports 7467 traffic, 7469 admin).
#   docker build -t thoughtgate-ts:0.1.0 .
#   docker run --read-only -p 7467:7467 -p 7469:7469 \
#     -v "$PWD/thoughtgate.yaml:/etc/thoughtgate/config.yaml:ro" thoughtgate-ts:0.1.0

# Node 24 LTS on Debian 13: uWS 20.57's binaries need glibc >= 2.38 (bookworm has 2.36).
ARG NODE_IMAGE=node:24-trixie-slim

# ---- build: compile TypeScript and native addons, then drop dev dependencies ----
FROM ${NODE_IMAGE} AS build
# node-gyp needs python3, make and a C++ compiler for native addons (uWS ships a binary;
# others such as better-sqlite3 or simdjson build from source).
RUN apt-get update \
 && apt-get install -y --no-install-recommends python3 make g++ ca-certificates \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /app
# `npm ci` runs the `prepare` script (tsc), so the sources must be here before it.
COPY package.json package-lock.json tsconfig.json ./
COPY bin ./bin
COPY src ./src
RUN npm ci --no-audit --no-fund \
 && npm prune --omit=dev --no-audit --no-fund \
 && npm cache clean --force \
 && test -f dist/cli/main.js

# ---- runtime: no compiler, no npm cache, code owned by root and read-only to the app ----
FROM ${NODE_IMAGE} AS runtime
# tini as PID 1: forwards SIGTERM to node and reaps stdio upstream grandchildren.
RUN apt-get update \
 && apt-get install -y --no-install-recommends tini ca-certificates \
 && rm -rf /var/lib/apt/lists/* \
 && groupadd --system --gid 10001 thoughtgate \
 && useradd --system --uid 10001 --gid 10001 --no-create-home --home-dir /nonexistent \
      --shell /usr/sbin/nologin thoughtgate \
 && mkdir -p /etc/thoughtgate /var/lib/thoughtgate \
 && chown 10001:10001 /var/lib/thoughtgate \
 && chmod 0700 /var/lib/thoughtgate
WORKDIR /app
COPY --from=build /app/package.json ./package.json
COPY --from=build /app/node_modules ./node_modules
COPY --from=build /app/dist ./dist
COPY --from=build /app/bin ./bin

# The admin port binds 0.0.0.0 explicitly so `docker run -p 7469:7469` and probes reach it
# (unset, it follows --bind / THOUGHTGATE_BIND). Pass THOUGHTGATE_ADMIN_TOKEN and
# THOUGHTGATE_API_TOKEN at run time; a generated admin token is written to the state volume.
ENV NODE_ENV=production \
    THOUGHTGATE_UWS_BUILD=modern \
    THOUGHTGATE_CONFIG=/etc/thoughtgate/config.yaml \
    THOUGHTGATE_OUTBOUND_PORT=7467 \
    THOUGHTGATE_ADMIN_PORT=7469 \
    THOUGHTGATE_ADMIN_BIND=0.0.0.0 \
    THOUGHTGATE_AUDIT_PATH=/var/lib/thoughtgate/audit.ndjson \
    THOUGHTGATE_STATE_DIR=/var/lib/thoughtgate/state
# The only writable path (audit trail, pending approvals): with --read-only (or readOnlyRootFilesystem) this stays a volume.
# 0700 for uid 10001: a `command:` server spawned in this container runs as that uid too and
# could read it; run servers you do not trust as their own container, reached over `url:`.
# Set THOUGHTGATE_AUDIT_PATH=- to send the audit trail to stdout instead.
VOLUME ["/var/lib/thoughtgate"]

# 7468: webhook decisions and Slack buttons (listening only when a workflow needs it)
EXPOSE 7467 7468 7469
USER 10001:10001

HEALTHCHECK --interval=15s --timeout=3s --start-period=10s --retries=3 \
  CMD ["node", "-e", "fetch('http://127.0.0.1:'+(process.env.THOUGHTGATE_ADMIN_PORT||7469)+'/health').then(r=>process.exit(r.ok?0:1),()=>process.exit(1))"]

ENTRYPOINT ["/usr/bin/tini", "--", "node", "/app/bin/thoughtgate.js", "serve"]
