#!/bin/sh
# Installs Proton from a finished build, in the FHS layout:
#
#   $PREFIX/bin/{protonc,proton-run,protonctl}   all three together: protonctl runs the
#                                                 other two from its own directory
#   $PREFIX/share/man/man1/protonc*.1             generated from protonc's CLI definition
#   $PREFIX/share/man/man8/protonctl*.8           generated from protonctl's
#   $PREFIX/share/man/man8/proton-run.8           packaging/man/proton-run.8
#   $PREFIX/share/bash-completion/completions/    protonc, protonctl
#   $PREFIX/share/zsh/site-functions/             _protonc, _protonctl
#   $PREFIX/share/fish/vendor_completions.d/      protonc.fish, protonctl.fish
#   $PREFIX/share/proton/html/                    the default site
#   $SYSCONFDIR/{proton.conf,mime.types}          only when not there yet
#   $PREFIX/lib/systemd/system/proton.service     paths rewritten for PREFIX and SYSCONFDIR
#   $PREFIX/lib/sysusers.d/proton.conf            the `proton` system user, for systemd-sysusers
#
# Usage:  cargo build --release --bins && sudo sh packaging/install.sh [--create-user]
# Environment: PREFIX (/usr/local), SYSCONFDIR (/etc/proton), DESTDIR (staging root for
# packagers; nothing outside it is touched), BUILD_DIR (where the binaries are:
# target/release of this checkout).
# --create-user creates the `proton` system user now (not with DESTDIR); otherwise
# systemd-sysusers creates it at boot from the sysusers.d file.
set -eu

usage() {
    sed -n '2,/^set -eu/p' "$0" | sed '$d; s/^# \{0,1\}//'
}

create_user=no
for arg in "$@"; do
    case $arg in
        --create-user) create_user=yes ;;
        -h | --help) usage; exit 0 ;;
        *) echo "install.sh: unknown argument: $arg (see --help)" >&2; exit 2 ;;
    esac
done

src=$(cd "$(dirname "$0")/.." && pwd)
PREFIX=${PREFIX:-/usr/local}
SYSCONFDIR=${SYSCONFDIR:-/etc/proton}
DESTDIR=${DESTDIR:-}
BUILD_DIR=${BUILD_DIR:-$src/target/release}
bindir=$PREFIX/bin
datadir=$PREFIX/share
mandir=$datadir/man
unitdir=$PREFIX/lib/systemd/system
sysusersdir=$PREFIX/lib/sysusers.d

for bin in protonc proton-run protonctl; do
    if [ ! -x "$BUILD_DIR/$bin" ]; then
        echo "install.sh: $BUILD_DIR/$bin not found: build first (cargo build --release --bins) or set BUILD_DIR" >&2
        exit 1
    fi
done

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT INT TERM

# install -d/-m with DESTDIR in front of every target.
dir() { install -d -m 0755 "$DESTDIR$1"; }
file() { install -m "$1" "$2" "$DESTDIR$3"; }

dir "$bindir"
for bin in protonc proton-run protonctl; do
    file 0755 "$BUILD_DIR/$bin" "$bindir/$bin"
done

# Man pages and completions, from the programs just built.
mkdir "$work/man1" "$work/man8" "$work/completions"
"$BUILD_DIR/protonc" generate man "$work/man1" >/dev/null
"$BUILD_DIR/protonctl" generate man "$work/man8" >/dev/null
"$BUILD_DIR/protonc" generate completions "$work/completions" >/dev/null
"$BUILD_DIR/protonctl" generate completions "$work/completions" >/dev/null
cp "$src/packaging/man/proton-run.8" "$work/man8/"
dir "$mandir/man1"
dir "$mandir/man8"
for page in "$work"/man1/*.1; do file 0644 "$page" "$mandir/man1/${page##*/}"; done
for page in "$work"/man8/*.8; do file 0644 "$page" "$mandir/man8/${page##*/}"; done
dir "$datadir/bash-completion/completions"
dir "$datadir/zsh/site-functions"
dir "$datadir/fish/vendor_completions.d"
for bin in protonc protonctl; do
    file 0644 "$work/completions/$bin.bash" "$datadir/bash-completion/completions/$bin"
    file 0644 "$work/completions/_$bin" "$datadir/zsh/site-functions/_$bin"
    file 0644 "$work/completions/$bin.fish" "$datadir/fish/vendor_completions.d/$bin.fish"
done

# The default site.
dir "$datadir/proton/html"
for page in "$src"/conf/html/*; do file 0644 "$page" "$datadir/proton/html/${page##*/}"; done

# The configuration: never replaces what an administrator wrote.
dir "$SYSCONFDIR"
sed "s|/usr/local/share/proton/html|$datadir/proton/html|" "$src/packaging/conf/proton.conf" >"$work/proton.conf"
for f in "$work/proton.conf" "$src/conf/mime.types"; do
    name=${f##*/}
    if [ -e "$DESTDIR$SYSCONFDIR/$name" ]; then
        echo "install.sh: keeping $DESTDIR$SYSCONFDIR/$name (the new one is not installed)"
    else
        file 0644 "$f" "$SYSCONFDIR/$name"
    fi
done

# systemd: the unit with this installation's paths, and the user it runs as.
sed -e "s|/usr/local/bin/|$bindir/|g" -e "s|/etc/proton/|$SYSCONFDIR/|g" \
    "$src/packaging/systemd/proton.service" >"$work/proton.service"
dir "$unitdir"
file 0644 "$work/proton.service" "$unitdir/proton.service"
dir "$sysusersdir"
file 0644 "$src/packaging/systemd/proton.sysusers" "$sysusersdir/proton.conf"

if [ "$create_user" = yes ]; then
    if [ -n "$DESTDIR" ]; then
        echo "install.sh: --create-user ignored with DESTDIR (the sysusers.d file creates the user on the target)"
    elif id proton >/dev/null 2>&1; then
        echo "install.sh: user proton exists"
    elif command -v systemd-sysusers >/dev/null 2>&1; then
        systemd-sysusers "$sysusersdir/proton.conf"
    else
        useradd --system --user-group --home-dir /var/lib/proton --shell /usr/sbin/nologin proton
    fi
fi

echo "install.sh: installed (PREFIX=$PREFIX, SYSCONFDIR=$SYSCONFDIR${DESTDIR:+, staged under DESTDIR=$DESTDIR})"
