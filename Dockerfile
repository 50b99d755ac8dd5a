# Tollgate gateway image: Node 20, non-root, read-only root filesystem friendly.
# The project (zuplo.jsonc, config/, modules/) is mounted at /project; the SQLite store and any
# generated files live on the /data volume; tsx's compile cache goes to /tmp (an emptyDir/tmpfs).
FROM node:20-bookworm-slim AS deps
WORKDIR /app
# better-sqlite3 falls back to a source build when no prebuilt binary matches.
RUN apt-get update && apt-get install -y --no-install-recommends python3 make g++ && rm -rf /var/lib/apt/lists/*
COPY package.json package-lock.json ./
RUN npm ci --omit=dev --ignore-scripts=false && npm cache clean --force

FROM node:20-bookworm-slim
ENV NODE_ENV=production \
    TOLLGATE_MODE=production \
    TOLLGATE_STORE=sqlite:/data/tollgate.db \
    TOLLGATE_METRICS_HOST=0.0.0.0 \
    TOLLGATE_METRICS_PORT=9464 \
    PORT=9000 \
    TMPDIR=/tmp
WORKDIR /app
COPY --from=deps /app/node_modules ./node_modules
COPY package.json ./
COPY bin ./bin
COPY src ./src
RUN mkdir -p /data /project && chown node:node /data /project
USER node
VOLUME ["/data", "/tmp"]
EXPOSE 9000 9464
HEALTHCHECK --interval=15s --timeout=3s --start-period=20s --retries=3 \
  CMD ["node", "-e", "fetch('http://127.0.0.1:'+(process.env.PORT||9000)+'/healthz').then(r=>process.exit(r.ok?0:1),()=>process.exit(1))"]
# A larger young generation: a busy gateway allocates tens of KiB per request, and with V8's
# default (16 MiB semi-spaces) the frequent scavenges cost 40-70 µs of CPU per proxied request at
# load (docs/performance.md, "Node flags").
ENTRYPOINT ["node", "--max-semi-space-size=32", "/app/bin/tollgate.js"]
CMD ["start", "--project", "/project", "--host", "0.0.0.0"]
