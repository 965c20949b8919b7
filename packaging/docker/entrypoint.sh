#!/bin/sh
# The container's entrypoint: compiles $PROTON_CONF into $PROTON_IR, then becomes proton-run
# (exec), so the signals the container runtime sends reach the master itself: the image's
# STOPSIGNAL is QUIT (graceful stop), `docker kill -s HUP` reloads the IR.
#
#   docker run IMAGE                     compile and serve $PROTON_CONF
#   docker run IMAGE -t                  arguments starting with `-` are proton-run's
#   docker run IMAGE protonctl status …  any other command is run as it is
#
# Environment: PROTON_CONF (/etc/proton/proton.conf), PROTON_IR (/var/lib/proton/proton.ir),
# PROTON_BIN_DIR (/usr/local/bin: where protonc and proton-run are; protonctl reads it too),
# and proton-run's own PROTON_WORKERS and PROTON_LOG_LEVEL.
set -eu

: "${PROTON_CONF:=/etc/proton/proton.conf}"
: "${PROTON_IR:=/var/lib/proton/proton.ir}"
: "${PROTON_BIN_DIR:=/usr/local/bin}"

if [ $# -gt 0 ]; then
    case $1 in
        -*) ;;
        *) exec "$@" ;;
    esac
fi

# A config that does not compile stops here, with protonc's diagnostics on stderr.
"$PROTON_BIN_DIR/protonc" compile "$PROTON_CONF" -o "$PROTON_IR"
exec "$PROTON_BIN_DIR/proton-run" "$@" "$PROTON_IR"
