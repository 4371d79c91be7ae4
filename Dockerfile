# The fleetgate gateway image (also runs `discovery` and `all`: pass the role as the command).
#
#   docker build -t fleetgate:0.1.0 .
#   docker run -p 6751:6751 -p 6752:6752 -v $PWD/pki:/var/lib/fleetgate/pki:ro fleetgate:0.1.0
#
# infra/terraform/modules/gateways runs it on ECS with the PKI and AK/SK from Secrets Manager
# (docs/deploy.md).
#
# Node 24 LTS on Debian 13 (trixie), pinned by exact tag: glibc 2.41 loads the native
# uWebSockets.js of @btc-vision/uwebsockets.js (built against glibc 2.38), so the HTTP APIs run
# on uWS, not on the node:http fallback (README, "HTTP engine"); Debian 12 (bookworm, glibc 2.36)
# would not. Node 24.22.3 is also the version `npm test` runs its second pass on. The image sets
# FLEETGATE_HTTP_ENGINE=uws: a base that cannot load uWS fails at start instead of running slower.
ARG NODE_IMAGE=node:24.22.3-trixie-slim

FROM ${NODE_IMAGE} AS build
WORKDIR /app
COPY package.json package-lock.json ./
RUN npm ci --no-audit --no-fund
COPY . .
RUN npm run build

# Only `dependencies`, installed fresh from the lock file (what the runtime image runs on).
# test/integration/production-install.test.ts performs these same steps without Docker.
FROM ${NODE_IMAGE} AS deps
WORKDIR /app
COPY package.json package-lock.json ./
RUN npm ci --omit=dev --no-audit --no-fund

FROM ${NODE_IMAGE}
# OPENSSL_CONF: bin/openssl.cnf turns TLS 1.3 session tickets off; stock agents never resume a
# session, and each ticket costs the gateway CPU on every agent handshake (docs/capacity.md).
ENV NODE_ENV=production \
    FLEETGATE_DATA_DIR=/var/lib/fleetgate \
    FLEETGATE_HTTP_ENGINE=uws \
    OPENSSL_CONF=/app/bin/openssl.cnf
WORKDIR /app
COPY --from=build /app/package.json ./package.json
COPY --from=deps /app/node_modules ./node_modules
COPY --from=build /app/bin ./bin
COPY --from=build /app/dist ./dist
# The data directory (spool, TLS files, embedded store) belongs to the unprivileged user; as a
# VOLUME, a container runtime (ECS bind mounts included) creates it with these owners, so the
# container's root file system can stay read-only.
RUN mkdir -p /var/lib/fleetgate && chown node:node /var/lib/fleetgate
VOLUME ["/var/lib/fleetgate"]
USER node
# 6751 agent gRPC (mTLS), 6752 control API, 8088 discovery
EXPOSE 6751 6752 8088
STOPSIGNAL SIGTERM
# The gateway's V8 flags: gateway/process/node-flags.ts says why.
CMD ["node", "--initial-old-space-size=128", "bin/fleetgate.js", "gateway"]
