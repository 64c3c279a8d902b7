# syntax=docker/dockerfile:1
# The worker image: compiled dist/ on production dependencies, the workflow bundle prebuilt, run as
# the unprivileged `node` user; nothing is written at run time, so a read-only root filesystem works.

# 1. Compile src/ to dist/ (TypeScript is a dev dependency) and bundle the workflow code.
FROM node:22-bookworm-slim AS build
WORKDIR /app
COPY package.json package-lock.json ./
RUN npm ci --ignore-scripts --no-audit --no-fund
COPY tsconfig.json tsconfig.build.json ./
COPY scripts/build.js ./scripts/
COPY bin ./bin
COPY src ./src
RUN node scripts/build.js && test -f dist/.built
# Bundled here, at the path the final stage runs it from: the bundle's cache key hashes the
# compiled workflow files, so the worker finds it and never runs webpack at start.
ENV LAKEBASE_WORKER_CACHE=/app/cache LAKEBASE_WORKER_FROM_SOURCE=0
RUN node bin/lakebase-worker.js bundle

# 2. Production dependencies only.
FROM node:22-bookworm-slim AS deps
WORKDIR /app
COPY package.json package-lock.json ./
RUN npm ci --omit=dev --ignore-scripts --no-audit --no-fund && npm cache clean --force

# 3. The Lakebase emulator of docker-compose.yml (`--target emulator`): a local stand-in for
#    Databricks, never for production. It runs on pg-gateway, a development dependency, so it takes
#    the build stage's full node_modules; the worker image below does not.
FROM node:22-bookworm-slim AS emulator
ENV NODE_ENV=production \
    LAKEBASE_WORKER_FROM_SOURCE=0
WORKDIR /app
COPY --from=build /app/node_modules ./node_modules
COPY package.json ./
COPY bin ./bin
COPY --from=build /app/dist ./dist
USER node
EXPOSE 8765 6543
ENTRYPOINT ["node", "bin/lakebase-worker.js"]
CMD ["emulator", "--config", "/config/emulator.yaml"]

# 4. What runs: no sources, no dev dependencies, no compiler. The last stage, so a plain
#    `docker build .` makes this image.
FROM node:22-bookworm-slim
ENV NODE_ENV=production \
    LAKEBASE_WORKER_CACHE=/app/cache \
    LAKEBASE_WORKER_FROM_SOURCE=0
WORKDIR /app
COPY --from=deps /app/node_modules ./node_modules
COPY package.json ./
COPY bin ./bin
COPY --from=build /app/dist ./dist
COPY --from=build /app/cache ./cache
USER node
EXPOSE 9464
HEALTHCHECK --interval=15s --timeout=5s --start-period=30s --retries=3 \
  CMD node -e "fetch('http://127.0.0.1:9464/healthz').then(r => process.exit(r.ok ? 0 : 1), () => process.exit(1))"
# SIGTERM (docker stop, a Kubernetes pod deletion) drains the worker: no new tasks, running
# activities get worker.shutdownGraceTime to finish; give the container at least that long.
STOPSIGNAL SIGTERM
# A young generation of 4 MB per semi-space instead of V8's 16: the worker's peak RSS was 40-50 MB
# lower in every bench case at the same speed (docs/operations.md, Memory). A flag here, not in
# NODE_OPTIONS, so a heap limit given there adds to it.
ENTRYPOINT ["node", "--max-semi-space-size=4", "bin/lakebase-worker.js"]
CMD ["worker", "--config", "/config/lakebase.yaml"]
