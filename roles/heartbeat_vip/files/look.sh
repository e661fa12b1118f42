#!/bin/sh
# What the heartbeat_vip role needs to know about a host, read in one round trip (the role runs it with
# `sh -c`; it changes nothing).
#   look.sh names DB NAME...       only the R lines (etc_hosts.yml, after it changed /etc/hosts)
#   look.sh all DB NAMES CONFIG_DIR NFT_FILE NFT_TABLE RC_DIR SERVICES PATH...
#                                  everything (tasks/main.yml); NAMES and SERVICES are space-separated
# One line per fact, fields separated by single spaces:
#   R NAME ADDRESS... -              what NAME resolves to in getent's DB (ahostsv4 or ahostsv6), each
#                                    address once, in the resolver's order
#   F MODE OWNER GROUP SHA1|- PATH   each managed path and engine rc link that exists (lstat; SHA1 of
#                                    regular files only)
#   C NAME BASE64                    haresources and hbvip.cf of the config dir, where they exist
#   W FIREWALL                       firewalld, ufw, nftables, iptables or none: the active one
#   N RC INCLUDED BASE64             `nft list table inet TABLE`'s exit code and output, and whether
#                                    /etc/nftables.conf includes the hbvip file (1/0); only with nft
set -u

resolve() {
    db=$1
    shift
    for name in "$@"; do
        printf 'R %s %s-\n' "$name" "$(getent "$db" "$name" | awk '!seen[$1]++ {printf "%s ", $1}')"
    done
}

if [ "$1" = names ]; then
    shift
    resolve "$@"
    exit 0
fi
# shellcheck disable=SC2086 # NAMES is a list of words
resolve "$2" $3
config_dir=$4 nft_file=$5 nft_table=$6 rc_dir=$7 services=$8
shift 8

seen() {
    [ -e "$1" ] || [ -L "$1" ] || return 0
    sum=-
    if [ -f "$1" ] && [ ! -L "$1" ]; then
        sum=$(sha1sum < "$1") && sum=${sum%% *}
    fi
    set -- "$1" "$(stat -c '%a %U %G' -- "$1")"
    mode=${2%% *}
    printf 'F %04d %s %s %s\n' "$mode" "${2#* }" "$sum" "$1"
}

for path in "$@"; do
    seen "$path"
done
for service in $services; do
    for link in "$rc_dir"/[SK][0-9][0-9]"$service"; do
        seen "$link"
    done
done

for name in haresources hbvip.cf; do
    if [ -f "$config_dir/$name" ]; then
        printf 'C %s %s\n' "$name" "$(base64 -w0 < "$config_dir/$name")"
    fi
done

if command -v firewall-cmd >/dev/null && firewall-cmd --state >/dev/null 2>&1; then
    echo 'W firewalld'
elif command -v ufw >/dev/null && ufw status 2>/dev/null | grep -q '^Status: active'; then
    echo 'W ufw'
elif command -v nft >/dev/null; then
    echo 'W nftables'
elif command -v iptables >/dev/null; then
    echo 'W iptables'
else
    echo 'W none'
fi

if command -v nft >/dev/null; then
    live=$(nft list table inet "$nft_table" 2>&1)
    rc=$?
    included=0
    if grep -qxF "include \"$nft_file\"" /etc/nftables.conf 2>/dev/null; then
        included=1
    fi
    printf 'N %s %s %s\n' "$rc" "$included" "$(printf '%s\n' "$live" | base64 -w0)"
fi
exit 0
