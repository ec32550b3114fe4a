#!/usr/bin/env bash
# strongSwan 6.1 (Debian sid) in a chroot, for wansim's interop tests.
#
#   interop/strongswan.sh setup                 build the chroot (idempotent; reused when present)
#   interop/strongswan.sh start NAME CONFDIR    run charon NAME with CONFDIR/{strongswan,swanctl}.conf
#   interop/strongswan.sh load NAME             (re)load CONFDIR/swanctl.conf into running NAME
#   interop/strongswan.sh initiate NAME CHILD   ask running NAME to initiate CHILD
#   interop/strongswan.sh swanctl NAME ARGS...  run swanctl ARGS against running NAME
#   interop/strongswan.sh stop NAME [--remove]  stop charon NAME by its PID (--remove: its folder)
#   interop/strongswan.sh status [NAME]         chroot + charon state
#   interop/strongswan.sh clean                 unmount and delete the chroot
#
# Why a chroot: trixie's strongSwan 6.0.1 has no ML-KEM backend; sid's 6.1 does ML-KEM through
# its openssl plugin. The host kernel has no ESP, so charon uses kernel-libipsec (userspace ESP,
# needs /dev/net/tun). charon binds 127.0.0.1 on high ports only (see wansim/interop/strongswan.py
# which writes the configs); traffic selectors stay in documentation ranges.
#
# Environment: WANSIM_CHROOT (default /var/lib/wansim/sid-chroot), WANSIM_DEBIAN_MIRROR (default:
# the first Debian URI in /etc/apt/sources.list*, i.e. the mirror this machine reaches).
set -euo pipefail

CHROOT=${WANSIM_CHROOT:-/var/lib/wansim/sid-chroot}
PACKAGES="strongswan-charon strongswan-swanctl libstrongswan-standard-plugins \
libstrongswan-extra-plugins libcharon-extra-plugins"
STAMP="$CHROOT/.wansim-ready"

die() { echo "strongswan.sh: $*" >&2; exit 1; }

mirror() {
    if [[ -n "${WANSIM_DEBIAN_MIRROR:-}" ]]; then echo "$WANSIM_DEBIAN_MIRROR"; return; fi
    local uri
    # deb822 "URIs:" lines first, then one-line "deb URI suite" entries; skip security mirrors.
    uri=$(cat /etc/apt/sources.list.d/*.sources /etc/apt/sources.list 2>/dev/null \
        | awk '/^URIs:/ {print $2} /^deb / {print $2}' | grep -v -- -security | grep -m1 debian \
        || true)
    echo "${uri:-http://deb.debian.org/debian}"
}

mount_api() {
    # charon needs /proc (self/fd) and /dev/net/tun (kernel-libipsec); both bound read-only-ish.
    mountpoint -q "$CHROOT/proc" || mount -t proc proc "$CHROOT/proc"
    mkdir -p "$CHROOT/dev/net"
    if [[ ! -c "$CHROOT/dev/net/tun" ]]; then
        [[ -c /dev/net/tun ]] || { mkdir -p /dev/net; mknod /dev/net/tun c 10 200; }
        touch "$CHROOT/dev/net/tun"
        mount --bind /dev/net/tun "$CHROOT/dev/net/tun"
    fi
    [[ -e "$CHROOT/dev/urandom" ]] || die "$CHROOT/dev has no urandom: broken chroot, remove it"
}

setup() {
    [[ $(id -u) -eq 0 ]] || die "setup needs root (debootstrap, chroot); run it as root"
    if [[ -f "$STAMP" ]]; then echo "chroot ready: $CHROOT ($(cat "$STAMP"))"; return; fi
    # One builder at a time (two test runs may start together); the winner's chroot is reused.
    mkdir -p "$(dirname "$CHROOT")"
    exec 9>"$CHROOT.lock"
    flock -w 1800 9 || die "another build of $CHROOT holds $CHROOT.lock"
    if [[ -f "$STAMP" ]]; then echo "chroot ready: $CHROOT ($(cat "$STAMP"))"; return; fi
    if ! command -v debootstrap >/dev/null; then
        # A fresh machine has no debootstrap: install it from the host's own Debian mirror.
        echo "installing debootstrap with apt-get" >&2
        DEBIAN_FRONTEND=noninteractive apt-get update -qq >&2 || true
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends debootstrap >&2 \
            || die "debootstrap is not installed and apt-get install debootstrap failed"
    fi
    local url; url=$(mirror)
    local t0=$SECONDS
    if [[ ! -x "$CHROOT/usr/bin/apt-get" ]]; then
        rm -rf "$CHROOT.partial"
        echo "debootstrap sid from $url into $CHROOT (takes minutes)" >&2
        debootstrap --variant=minbase sid "$CHROOT.partial" "$url" >&2 \
            || die "debootstrap sid from $url failed (see output above); is the mirror reachable?"
        rm -rf "$CHROOT"; mv "$CHROOT.partial" "$CHROOT"
    fi
    # The reachable mirror may be a frozen snapshot whose Release file is past Valid-Until.
    echo 'Acquire::Check-Valid-Until "false";' >"$CHROOT/etc/apt/apt.conf.d/99wansim-snapshot"
    # Keep package scripts from starting services inside the chroot.
    printf '#!/bin/sh\nexit 101\n' >"$CHROOT/usr/sbin/policy-rc.d"
    chmod +x "$CHROOT/usr/sbin/policy-rc.d"
    mount_api
    chroot "$CHROOT" env DEBIAN_FRONTEND=noninteractive apt-get update -qq >&2 \
        || die "apt-get update in the sid chroot failed"
    # shellcheck disable=SC2086
    chroot "$CHROOT" env DEBIAN_FRONTEND=noninteractive \
        apt-get install -y -qq --no-install-recommends $PACKAGES >&2 \
        || die "apt-get install of strongSwan in the sid chroot failed"
    local version
    version=$(chroot "$CHROOT" dpkg-query -W -f='${Version}' strongswan-charon)
    [[ $version == 6.* ]] || die "sid chroot has strongswan-charon $version, need 6.1 or newer"
    echo "strongswan-charon $version, built in $((SECONDS - t0)) s" >"$STAMP"
    echo "chroot ready: $CHROOT ($(cat "$STAMP"))"
}

charon_bin() {
    local b
    for b in /usr/lib/ipsec/charon /usr/libexec/ipsec/charon; do
        [[ -x "$CHROOT$b" ]] && { echo "$b"; return; }
    done
    die "no charon binary in $CHROOT"
}

# One folder per charon instance inside the chroot: configs, vici socket, log, pid.
rundir() { echo "$CHROOT/var/lib/wansim-charon/$1"; }
inner() { local d; d=$(rundir "$1"); echo "${d#"$CHROOT"}"; }

require_ready() { [[ -f "$STAMP" ]] || die "chroot $CHROOT is not built; run: $0 setup"; }

start() {
    local name=${1:?start NAME CONFDIR} confdir=${2:?start NAME CONFDIR}
    require_ready; mount_api
    local dir; dir=$(rundir "$name")
    [[ -f "$dir/charon.pid" ]] && alive "$(cat "$dir/charon.pid")" \
        && die "charon $name already runs (pid $(cat "$dir/charon.pid"))"
    mkdir -p "$dir/run"
    # strongswan.conf, swanctl.conf and any credentials (x509/, private/: swanctl loads those
    # folders next to the swanctl.conf it is given).
    cp -r "$confdir/." "$dir/"
    rm -f "$dir/charon.log" "$dir/charon.vici"
    # charon's PID file is hard-coded as /var/run/charon.pid, so each instance gets a private
    # mount namespace with its own /run; unshare, sh, setsid and chroot all exec, so $! is
    # charon's own PID. STRONGSWAN_CONF points charon at this instance's config.
    STRONGSWAN_CONF="$(inner "$name")/strongswan.conf" setsid unshare --mount --propagation private \
        sh -c 'mount --bind "$1/run" "$2/run" && exec chroot "$2" "$3"' sh "$dir" "$CHROOT" \
        "$(charon_bin)" >"$dir/charon.stdout" 2>&1 </dev/null &
    local pid=$!
    echo "$pid" >"$dir/charon.pid"
    local i
    for i in $(seq 100); do
        [[ -S "$dir/charon.vici" ]] && break
        alive "$pid" \
            || die "charon $name exited at start: $(tail -5 "$dir/charon.stdout" 2>/dev/null)"
        sleep 0.1
    done
    [[ -S "$dir/charon.vici" ]] || die "charon $name did not open its vici socket in 10 s"
    load "$name"
    echo "charon $name running, pid $pid"
}

# swanctl talks to one instance through its vici socket.
swanctl() {
    local name=$1; shift
    chroot "$CHROOT" env STRONGSWAN_CONF="$(inner "$name")/strongswan.conf" \
        swanctl --uri "unix://$(inner "$name")/charon.vici" "$@"
}

load() {
    local name=${1:?load NAME}
    swanctl "$name" --load-all --noprompt --file "$(inner "$name")/swanctl.conf" >&2 \
        || die "swanctl --load-all failed for $name"
}

initiate() {
    local name=${1:?initiate NAME CHILD} child=${2:?initiate NAME CHILD}
    swanctl "$name" --initiate --child "$child" --timeout "${3:-20}"
}

# Running and not a zombie: charon is reparented to PID 1 once `start` returns, and a PID 1
# that reaps lazily would otherwise make a dead charon look alive for seconds.
alive() { [[ -r /proc/$1/status ]] && ! grep -q '^State:[[:space:]]*Z' "/proc/$1/status"; }

stop() {
    local name=${1:?stop NAME [--remove]} remove=${2:-}
    local dir; dir=$(rundir "$name")
    [[ -f "$dir/charon.pid" ]] || { echo "charon $name not running"; return; }
    local pid; pid=$(cat "$dir/charon.pid")
    if alive "$pid"; then
        kill -TERM "$pid"
        local i
        for i in $(seq 100); do alive "$pid" || break; sleep 0.05; done
        alive "$pid" && kill -KILL "$pid"
    fi
    rm -f "$dir/charon.pid" "$dir/run/charon.pid"
    # --remove: also delete the instance folder (configs, log); the mount namespace that
    # bound its run/ died with charon, so it is a plain folder again.
    [[ $remove == --remove ]] && rm -rf --one-file-system "$dir"
    echo "charon $name stopped"
}

status() {
    if [[ -f "$STAMP" ]]; then echo "chroot: $CHROOT ($(cat "$STAMP"))"; else
        echo "chroot: $CHROOT not built"; fi
    local d
    for d in "$CHROOT"/var/lib/wansim-charon/*/; do
        [[ -f "$d/charon.pid" ]] || continue
        local pid; pid=$(cat "$d/charon.pid")
        if alive "$pid"; then echo "charon $(basename "$d"): running, pid $pid"
        else echo "charon $(basename "$d"): dead (stale pid $pid)"; fi
    done
}

# Unmount what mount_api mounted and delete the chroot (refuses while a charon runs).
clean() {
    [[ -d "$CHROOT" ]] || { echo "no chroot at $CHROOT"; return; }
    [[ -f "$STAMP" || -x "$CHROOT/usr/bin/apt-get" ]] || die "$CHROOT does not look like our chroot"
    local d
    for d in "$CHROOT"/var/lib/wansim-charon/*/; do
        [[ -f "$d/charon.pid" ]] && alive "$(cat "$d/charon.pid")" \
            && die "charon $(basename "$d") still runs; stop it first"
    done
    if mountpoint -q "$CHROOT/dev/net/tun"; then umount "$CHROOT/dev/net/tun"; fi
    if mountpoint -q "$CHROOT/proc"; then umount "$CHROOT/proc"; fi
    if mountpoint -q "$CHROOT/dev/net/tun" || mountpoint -q "$CHROOT/proc"; then
        die "could not unmount /proc or /dev/net/tun in $CHROOT"
    fi
    rm -rf --one-file-system "$CHROOT"
    echo "removed $CHROOT"
}

case "${1:-}" in
    setup) setup ;;
    start) shift; start "$@" ;;
    load) shift; load "$@" ;;
    initiate) shift; initiate "$@" ;;
    swanctl) shift; swanctl "$@" ;;
    stop) shift; stop "$@" ;;
    status) shift; status "$@" ;;
    clean) clean ;;
    *) echo "usage: $0 setup|start NAME CONFDIR|load NAME|initiate NAME CHILD|swanctl NAME ARGS|stop NAME|status|clean" >&2
       exit 2 ;;
esac
