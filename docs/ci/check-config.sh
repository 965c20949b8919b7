#!/bin/sh
# Checks a Proton config as a CI job would, with nothing but a POSIX shell and protonc:
#   1. protonc check CONFIG            every diagnostic; fails on errors
#   2. protonc test CONFIG EXPECT      the answers the team expects (skipped without EXPECT)
#   3. protonc diff BASE CONFIG        what changes in meaning against a base version, for
#                                      review (only with BASE_REF or BASE_CONFIG; never fails)
#
# Usage: check-config.sh [CONFIG [EXPECT]]
#   CONFIG   default conf/proton.conf
#   EXPECT   default CONFIG with its extension replaced by .expect, if that file exists
# Environment:
#   PROTONC        the protonc to run (default: protonc on PATH)
#   BASE_REF       a git revision (origin/main, a commit): diff against the config there. The
#                  config's directory is copied, then the revision's files are laid over it,
#                  so relative includes are read as they were; files outside that directory
#                  are read as they are now, and files added since stay visible.
#   BASE_CONFIG    a config file to diff against instead of BASE_REF
#   DIFF_MARKDOWN  also write the diff as Markdown there (for a pull-request comment)
# Exit status: 0 when the config is valid and answers as expected, 1 when not, 2 on a usage
# error or an unreadable EXPECT file.
set -eu

PROTONC=${PROTONC:-protonc}
config=${1:-conf/proton.conf}
expect=${2:-${config%.*}.expect}

if [ ! -f "$config" ]; then
    echo "check-config: no config at $config" >&2
    exit 2
fi
if ! command -v "$PROTONC" >/dev/null 2>&1 && [ ! -x "$PROTONC" ]; then
    echo "check-config: protonc not found (set PROTONC)" >&2
    exit 2
fi

status=0

echo "== protonc check $config"
"$PROTONC" check "$config" || status=1

if [ -f "$expect" ]; then
    echo "== protonc test $config $expect"
    rc=0
    "$PROTONC" test "$config" "$expect" || rc=$?
    if [ "$rc" -eq 2 ]; then
        exit 2
    fi
    [ "$rc" -eq 0 ] || status=1
elif [ $# -ge 2 ]; then
    echo "check-config: no expectations at $expect" >&2
    exit 2
else
    echo "== no $expect: protonc test skipped"
fi

base=${BASE_CONFIG:-}
tmp=
if [ -z "$base" ] && [ -n "${BASE_REF:-}" ]; then
    tmp=$(mktemp -d)
    trap 'rm -rf "$tmp"' EXIT
    dir=$(dirname "$config")
    # The directory as it is now (files git does not track, such as certificates, too),
    # then the revision's version of every tracked file over it.
    mkdir -p "$tmp/$dir"
    cp -R "$dir/." "$tmp/$dir/"
    if git archive "$BASE_REF" -- "$dir" | tar -x -C "$tmp"; then
        base="$tmp/$config"
    else
        echo "check-config: cannot read $dir at $BASE_REF; diff skipped" >&2
    fi
fi

if [ -n "$base" ]; then
    echo "== protonc diff ${BASE_REF:-$base} $config"
    rc=0
    "$PROTONC" diff "$base" "$config" || rc=$?
    if [ "$rc" -gt 1 ]; then
        echo "check-config: the base version does not compile; diff skipped" >&2
    elif [ -n "${DIFF_MARKDOWN:-}" ]; then
        "$PROTONC" diff --format markdown "$base" "$config" >"$DIFF_MARKDOWN" || true
    fi
fi

if [ "$status" -eq 0 ]; then
    echo "== $config: valid, and answers as expected"
fi
exit "$status"
