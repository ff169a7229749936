# nems-gateway container image: Node.js 22 and the gateway, nothing else (no shell, no package manager), run as
# the non-root user nems (10001) with a read-only root filesystem.
#
# No base image is pulled: `npm run image` (deploy/image/build.mjs) prepares the build context from the npm
# registry's official Node.js binary (version and sha512 pinned there), the shared libraries it links, the CA
# bundle and the production dependencies from package-lock.json, then builds this file:
#   npm run image                                   # buildah, podman or docker, whichever is installed
#   buildah bud --timestamp "$(git log -1 --format=%ct)" -t nems-gateway:0.1.0 build/image
#
# Mount points: /etc/nems-gateway (gateway.yaml, registry, PDS data, tls/ from Secrets; read-only) and
# /var/lib/nems-gateway (the embedded core's SQLite data and MESH outbox; only for upstream.kind embedded or
# `nems-gateway core`). Probes (no HEALTHCHECK: OCI images do not carry one, Kubernetes ignores it): liveness
# GET /healthz and readiness GET /readyz on the admin port. SIGTERM drains (lifecycle.readinessGraceMs, then
# lifecycle.drainDeadlineMs) and exits 0; Node runs as PID 1 and handles SIGTERM, SIGINT and SIGHUP (reload) itself.

# The runtime: Node.js, the libraries it links, CA certificates, /etc/passwd with nems.
FROM scratch AS runtime
COPY rootfs/ /
COPY --chown=10001:10001 data/ /var/lib/nems-gateway/

# The application, checked with the image's own Node: a native module built for another Node fails the build here.
FROM runtime AS app
COPY app/ /app/
RUN ["/usr/local/bin/node", "-e", "new (require('/app/node_modules/better-sqlite3'))(':memory:').prepare('select 1').get()"]
RUN ["/usr/local/bin/node", "/app/dist/src/main.js", "--version"]

FROM runtime
COPY --from=app /app/ /app/
LABEL org.opencontainers.image.title="nems-gateway" \
      org.opencontainers.image.description="mTLS security gateway for the Spine National Events Management Service (NEMS)" \
      org.opencontainers.image.licenses="Apache-2.0"
ENV NODE_ENV=production \
    NEMS_GATEWAY_CONFIG=/etc/nems-gateway/gateway.yaml \
    NEMS_GATEWAY_DATA_DIR=/var/lib/nems-gateway
WORKDIR /app
USER 10001:10001
EXPOSE 8443 9464
VOLUME ["/var/lib/nems-gateway"]
ENTRYPOINT ["/usr/local/bin/node", "/app/dist/src/main.js"]
CMD ["start"]
