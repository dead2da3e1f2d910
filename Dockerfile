# mod_pyexec in a container: Debian's Apache with libapache2-mod-pyexec,
# the page at /, the API at /execute, every sandbox layer when run with
# the profile in docker/seccomp.json (README, "Containers"):
#
#   docker build -t mod-pyexec .
#   docker run -d --name pyexec -p 127.0.0.1:8080:80 \
#       --security-opt seccomp=docker/seccomp.json mod-pyexec
#
# No BuildKit feature is used, so Docker's classic builder builds it too.

# --- build: the Debian package, from this source tree --------------------
FROM debian:bookworm-slim AS build
ARG DEBIAN_FRONTEND=noninteractive
RUN apt-get update \
 && apt-get install -y --no-install-recommends \
        build-essential debhelper dpkg-dev fakeroot \
        apache2-dev autoconf automake libtool pkgconf \
        libjansson-dev libpython3-dev libseccomp-dev python3 \
 && rm -rf /var/lib/apt/lists/*
# the source as git would ship it (.dockerignore leaves out build trees);
# htdocs/assets/, the editor bundle, comes along where `scripts/dev build`
# made it, and the page falls back to a plain text area where it did not
COPY . /src/mod-pyexec
WORKDIR /src/mod-pyexec
RUN dpkg-buildpackage -us -uc -b \
 && mkdir /debs && mv ../libapache2-mod-pyexec_*.deb /debs/

# --- runtime: Debian's apache2 and the package --------------------------
FROM debian:bookworm-slim
ARG DEBIAN_FRONTEND=noninteractive
COPY --from=build /debs/ /tmp/debs/
# with the data stack, so that a chart and a table work out of the box
RUN apt-get update \
 && apt-get install -y --no-install-recommends \
        apache2 curl /tmp/debs/libapache2-mod-pyexec_*.deb \
        python3-numpy python3-pandas python3-matplotlib \
 && rm -rf /var/lib/apt/lists/* /tmp/debs

# The main limits (the README's directive table), read by Apache as ${VAR}
# in pyexec-container.conf: `docker run -e PYEXEC_TIMEOUT=5 ...`. An empty
# PYEXEC_ALLOW_MODULES allows no package beyond the standard library.
# PyExecRequireSandbox is On and is not among them: where a layer is
# missing the container refuses to run code rather than run it unconfined.
ENV PYEXEC_TIMEOUT=2 \
    PYEXEC_MEMORY_LIMIT=100M \
    PYEXEC_MAX_OUTPUT=1M \
    PYEXEC_MAX_DISPLAY=4M \
    PYEXEC_MAX_CODE_SIZE=64K \
    PYEXEC_MAX_SESSIONS=100 \
    PYEXEC_MAX_CLIENT_SESSIONS=10 \
    PYEXEC_MAX_QUEUE=4 \
    PYEXEC_SPARE_HELPERS=4 \
    PYEXEC_IDLE_TIMEOUT=600 \
    PYEXEC_RATE_LIMIT="5/s 20" \
    PYEXEC_ALLOW_MODULES="numpy pandas matplotlib" \
    PYEXEC_STATUS_FROM="127.0.0.1 ::1"

COPY docker/pyexec-container.conf /etc/apache2/conf-available/
COPY docker/pyexec-foreground /usr/local/bin/
# the profile travels with the image, for hosts that have only the image:
#   docker run --rm --entrypoint cat mod-pyexec /usr/share/mod_pyexec/seccomp.json
COPY docker/seccomp.json /usr/share/mod_pyexec/seccomp.json
# the module without the package's own pyexec.conf (the page at /pyexec/,
# fixed limits): the container's conf serves the page at / and takes the
# limits from the environment
RUN a2enmod pyexec status setenvif headers \
 && rm /etc/apache2/mods-enabled/pyexec.conf \
 && a2dissite 000-default \
 && a2disconf other-vhosts-access-log \
 && a2enconf pyexec-container \
 && . /etc/apache2/envvars && mkdir -p "$APACHE_RUN_DIR" \
 && apache2 -t -DPYEXEC_WITH_MODULES

EXPOSE 80
# healthy while this httpd can serve: ?sessions=keep is 503 only when it
# cannot (its supervisor gone, or no interpreter can start and it holds
# no session), not merely because its session table is full
HEALTHCHECK --interval=5s --timeout=3s --start-period=30s --retries=3 \
    CMD curl -fsS -o /dev/null "http://127.0.0.1/pyexec-health?sessions=keep" || exit 1
# httpd is PID 1: `docker stop` (SIGTERM) ends it, its supervisor and
# every helper at once
ENTRYPOINT ["/usr/local/bin/pyexec-foreground"]
