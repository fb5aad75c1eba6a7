# ecrd as a container image, built offline: nothing is pulled. The image is
# `FROM scratch` plus one statically linked binary, so there is no base image
# to fetch, no shell and no package manager inside.
#
# Build it with tools/build-image.sh, which builds the static binary and
# stages the build context this file expects:
#   ecrd    the binary (x86_64-unknown-linux-gnu, +crt-static)
#   empty/  an empty directory (becomes /data and /tmp, owned by the user)
FROM scratch

COPY ecrd /usr/local/bin/ecrd
# State lives in /data when ECRD_DATA_DIR=/data (mount a volume there); the
# directory exists in the image, owned by the non-root user, so a fresh named
# volume inherits that owner. /tmp is where `--tls` without a data directory
# keeps its generated CA.
COPY --chown=65532:65532 empty/ /data/
COPY --chown=65532:65532 empty/ /tmp/

# Listen on every interface of the container; keep the default port.
ENV ECRD_HOST=0.0.0.0 \
    ECRD_PORT=4566
EXPOSE 4566

# A numeric user: a scratch image has no /etc/passwd to look a name up in.
USER 65532:65532

# Exec form, no shell: `ecrd health` asks http://127.0.0.1:$ECRD_PORT/_ecrd/health.
HEALTHCHECK --interval=5s --timeout=3s --start-period=5s --retries=3 \
    CMD ["/usr/local/bin/ecrd", "health"]

ENTRYPOINT ["/usr/local/bin/ecrd"]
CMD ["serve"]
