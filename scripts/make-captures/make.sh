#!/usr/bin/env bash
# Regenerate icidtrace's real test captures (captures/<case>/).
#
#   sudo scripts/make-captures/make.sh            # all cases
#   sudo scripts/make-captures/make.sh bdat burst # some cases
#
# Needs: root, iproute2 (ip netns), tcpdump, tshark + capinfos, python3 (3.11, stdlib), openssl.
#
# Topology (three network namespaces, documentation addresses only, nothing leaves the host):
#
#   ict-client                 ict-router                          ict-esa
#   eth0 198.51.100.10/24 ---- cli0 198.51.100.1 | esa0 192.0.2.1 ---- eth0 192.0.2.25/24
#        2001:db8:1::10/64          2001:db8:1::1 | 2001:db8:2::1          2001:db8:2::25/64
#
# The router forwards (so the ESA sees client packets with TTL/hop limit 63 and its own with 64),
# offloads are off on every veth (no 64 KB super-packets, real checksums), and neighbours are
# static (no ARP/ND chatter in the captures). tcpdump runs in the ESA namespace, as on the
# appliance; esa_server.py is the listener and writes the ESA-format mail_logs; clients.py makes
# the connections; expected.py derives expected.json from the capture with tshark and checks it
# against what the client meant to do (exit != 0 on any disagreement).
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO=$(cd "$HERE/../.." && pwd)
OUT=${CAPTURES_DIR:-$REPO/captures}

ALL_CASES=(delivered-quit quit-after-rcpt rst-before-data fin-no-quit rst-during-data idle-timeout
           starttls-delivered starttls-rst pipelining bdat rset-quit ipv6-delivered any-interface
           still-open burst)

declare -A DESC=(
  [delivered-quit]="EHLO, MAIL, RCPT, DATA, 250, QUIT, 221, close (the server closes right after 221)."
  [quit-after-rcpt]="MAIL, RCPT, then QUIT before DATA; the log says 'Receiving aborted by sender'."
  [rst-before-data]="Client RST (SO_LINGER 0, close) after RCPT, before DATA; the log says 'ICID lost' and 'Receiving aborted'."
  [fin-no-quit]="Client shutdown(SHUT_WR) (FIN) after RCPT without QUIT; the log says 'ICID lost' and 'Receiving aborted'."
  [rst-during-data]="Client sends ~100 KB of a 200 KB body after 354, then RST; the log says 'ICID lost' and 'Receiving aborted'."
  [idle-timeout]="EHLO, MAIL, RCPT, then silence; after the listener's idle timeout (3 s here, 300 s on a real ESA) the server sends '421 Timed out waiting for successful message injection, disconnecting.' and closes first."
  [starttls-delivered]="STARTTLS (TLSv1.2, self-signed), EHLO, message delivered and QUIT inside TLS, close_notify both ways, then FINs."
  [starttls-rst]="STARTTLS, then RST (no TLS alert) in the middle of ~100 KB of encrypted message data."
  [pipelining]="MAIL/RCPT/RCPT/DATA pipelined in one segment, replies in one segment, message, QUIT."
  [bdat]="CHUNKING: BDAT 2048, BDAT 2048, BDAT n LAST, then QUIT."
  [rset-quit]="MAIL, RCPT, RSET, QUIT; the log says 'Receiving aborted by sender' at the RSET."
  [ipv6-delivered]="delivered-quit over IPv6 (2001:db8:1::10 -> 2001:db8:2::25); this log's clock is UTC+01:00 with -2 s skew."
  [any-interface]="delivered-quit captured with 'tcpdump -i any' (Linux cooked capture v2, SLL2 link type)."
  [still-open]="EHLO, MAIL, RCPT, and the capture stops while the connection is still open; the server's idle timeout fires after the capture ended, so only the log shows the end."
  [burst]="25 connections from 198.51.100.10 started within one second: 19 delivered, 3 quit-after-rcpt (#4, #12, #20), 3 rst-before-data (#8, #16, #23), in start order."
)

# documentation addresses only
CLI4=198.51.100.10; CLI6=2001:db8:1::10
RTR_CLI4=198.51.100.1; RTR_CLI6=2001:db8:1::1
RTR_ESA4=192.0.2.1; RTR_ESA6=2001:db8:2::1
ESA4=192.0.2.25; ESA6=2001:db8:2::25
MAC_CLI=02:00:00:00:01:10; MAC_RTR_CLI=02:00:00:00:01:01
MAC_RTR_ESA=02:00:00:00:02:01; MAC_ESA=02:00:00:00:02:25
NS_CLI=ict-client; NS_RTR=ict-router; NS_ESA=ict-esa

die() { echo "make.sh: $*" >&2; exit 1; }

[ "$(id -u)" = 0 ] || die "must run as root (network namespaces, tcpdump)"
for t in ip tcpdump tshark capinfos python3 openssl flock; do
  command -v "$t" >/dev/null || die "missing tool: $t"
done
PY=$(python3 -c 'import sys; print(sys.executable)')

CASES=("$@")
[ ${#CASES[@]} -gt 0 ] || CASES=("${ALL_CASES[@]}")
for c in "${CASES[@]}"; do [ -n "${DESC[$c]:-}" ] || die "unknown case: $c (known: ${ALL_CASES[*]})"; done

exec 9>/run/lock/icidtrace-make-captures.lock
flock -n 9 || die "another make.sh run is in progress"

WORK=$(mktemp -d /tmp/icidtrace-captures.XXXXXX)
PIDS=()

cleanup() {
  local rc=$?
  for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
  for p in "${PIDS[@]}"; do wait "$p" 2>/dev/null || true; done
  for ns in "$NS_CLI" "$NS_RTR" "$NS_ESA"; do ip netns del "$ns" 2>/dev/null || true; done
  if [ "$rc" = 0 ]; then rm -rf "$WORK"; else echo "make.sh: failed (rc=$rc); work files kept in $WORK" >&2; fi
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

nsx() { local ns=$1; shift; ip netns exec "$ns" "$@"; }

setup_topology() {
  for ns in "$NS_CLI" "$NS_RTR" "$NS_ESA"; do
    ip netns del "$ns" 2>/dev/null || true   # stale from a killed run (names are ours)
    ip netns add "$ns"
    nsx "$ns" ip link set lo up
    # Before the veths exist (they copy `default`): no DAD, no RA, and the unsolicited MLD
    # reports of link-up go out at once instead of trickling into the first capture.
    nsx "$ns" sysctl -qw net.ipv6.conf.all.accept_dad=0 net.ipv6.conf.default.accept_dad=0 \
      net.ipv6.conf.all.accept_ra=0 net.ipv6.conf.default.accept_ra=0 \
      net.ipv6.conf.default.mldv1_unsolicited_report_interval=1 \
      net.ipv6.conf.default.mldv2_unsolicited_report_interval=1
  done
  ip link add name eth0 address "$MAC_CLI" netns "$NS_CLI" type veth \
    peer name cli0 address "$MAC_RTR_CLI" netns "$NS_RTR"
  ip link add name eth0 address "$MAC_ESA" netns "$NS_ESA" type veth \
    peer name esa0 address "$MAC_RTR_ESA" netns "$NS_RTR"
  nsx "$NS_RTR" sysctl -qw net.ipv4.ip_forward=1 net.ipv6.conf.all.forwarding=1
  # No tail-loss probes: with a ~50 us RTT they fire spuriously and make captures unrepeatable.
  nsx "$NS_CLI" sysctl -qw net.ipv4.tcp_early_retrans=0
  nsx "$NS_ESA" sysctl -qw net.ipv4.tcp_early_retrans=0

  nsx "$NS_CLI" ip addr add "$CLI4/24" dev eth0
  nsx "$NS_CLI" ip addr add "$CLI6/64" dev eth0 nodad
  nsx "$NS_RTR" ip addr add "$RTR_CLI4/24" dev cli0
  nsx "$NS_RTR" ip addr add "$RTR_CLI6/64" dev cli0 nodad
  nsx "$NS_RTR" ip addr add "$RTR_ESA4/24" dev esa0
  nsx "$NS_RTR" ip addr add "$RTR_ESA6/64" dev esa0 nodad
  nsx "$NS_ESA" ip addr add "$ESA4/24" dev eth0
  nsx "$NS_ESA" ip addr add "$ESA6/64" dev eth0 nodad

  nsx "$NS_CLI" "$PY" "$HERE/nic_offload_off.py" eth0
  nsx "$NS_RTR" "$PY" "$HERE/nic_offload_off.py" cli0 esa0
  nsx "$NS_ESA" "$PY" "$HERE/nic_offload_off.py" eth0

  nsx "$NS_CLI" ip link set eth0 up
  nsx "$NS_RTR" ip link set cli0 up
  nsx "$NS_RTR" ip link set esa0 up
  nsx "$NS_ESA" ip link set eth0 up

  nsx "$NS_CLI" ip route add default via "$RTR_CLI4"
  nsx "$NS_CLI" ip -6 route add default via "$RTR_CLI6"
  nsx "$NS_ESA" ip route add default via "$RTR_ESA4"
  nsx "$NS_ESA" ip -6 route add default via "$RTR_ESA6"

  # static neighbours: no ARP / neighbour discovery in the captures
  nsx "$NS_CLI" ip neigh replace "$RTR_CLI4" lladdr "$MAC_RTR_CLI" dev eth0 nud permanent
  nsx "$NS_CLI" ip neigh replace "$RTR_CLI6" lladdr "$MAC_RTR_CLI" dev eth0 nud permanent
  nsx "$NS_RTR" ip neigh replace "$CLI4" lladdr "$MAC_CLI" dev cli0 nud permanent
  nsx "$NS_RTR" ip neigh replace "$CLI6" lladdr "$MAC_CLI" dev cli0 nud permanent
  nsx "$NS_RTR" ip neigh replace "$ESA4" lladdr "$MAC_ESA" dev esa0 nud permanent
  nsx "$NS_RTR" ip neigh replace "$ESA6" lladdr "$MAC_ESA" dev esa0 nud permanent
  nsx "$NS_ESA" ip neigh replace "$RTR_ESA4" lladdr "$MAC_RTR_ESA" dev eth0 nud permanent
  nsx "$NS_ESA" ip neigh replace "$RTR_ESA6" lladdr "$MAC_RTR_ESA" dev eth0 nud permanent

  check_path "$ESA4" "$CLI4"
  check_path "$ESA6" "$CLI6"
  sleep 1   # let interface-up chatter (MLD reports) pass before any capture starts
}

check_path() {  # check_path SERVER_IP CLIENT_IP: one TCP connection through the router (no ping needed)
  ip netns exec "$NS_ESA" "$PY" -c '
import socket, sys
fam = socket.AF_INET6 if ":" in sys.argv[1] else socket.AF_INET
s = socket.socket(fam); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind((sys.argv[1], 9)); s.listen(1); s.settimeout(5)
c, peer = s.accept(); assert peer[0] == sys.argv[2], peer; c.close()' "$1" "$2" &
  local srv=$!
  sleep 0.3
  nsx "$NS_CLI" "$PY" -c '
import socket, sys
fam = socket.AF_INET6 if ":" in sys.argv[1] else socket.AF_INET
socket.create_connection((sys.argv[1], 9), timeout=5).close()' "$1" || die "no path client -> $1"
  wait "$srv" || die "no path client -> $1 (server side)"
}

wait_file() {  # wait_file PATH SECONDS [MIN_LINES] [GREP]
  local path=$1 secs=$2 lines=${3:-1} pat=${4:-} i
  for ((i = 0; i < secs * 20; i++)); do
    if [ -f "$path" ]; then
      if [ -n "$pat" ]; then grep -q "$pat" "$path" && return 0
      elif [ "$(wc -l <"$path")" -ge "$lines" ]; then return 0; fi
    fi
    sleep 0.05
  done
  die "timed out waiting for $path"
}

stop_pid() {  # stop_pid PID SIGNAL
  kill "-$2" "$1" 2>/dev/null || true
  wait "$1" 2>/dev/null || true
  local np=() p
  for p in "${PIDS[@]}"; do [ "$p" = "$1" ] || np+=("$p"); done
  PIDS=("${np[@]}")
}

check_tcpdump() {  # every packet the filter accepted must be in the file
  local name=$1 err=$2 pcap=$3 captured received dropped inpcap
  captured=$(sed -n 's/^\([0-9]*\) packets\{0,1\} captured$/\1/p' "$err")
  received=$(sed -n 's/^\([0-9]*\) packets\{0,1\} received by filter$/\1/p' "$err")
  dropped=$(sed -n 's/^\([0-9]*\) packets\{0,1\} dropped by kernel$/\1/p' "$err")
  inpcap=$(capinfos -c -T -r "$pcap" | cut -f2)
  if [ -z "$captured" ] || [ "$captured" != "$received" ] || [ "$dropped" != 0 ] || [ "$inpcap" != "$captured" ]; then
    die "$name: incomplete capture (captured=$captured received=$received dropped=$dropped in file=$inpcap)"
  fi
}

# Stable identifiers per case so ICIDs/MIDs do not change between regenerations.
case_index() { local i; for i in "${!ALL_CASES[@]}"; do [ "${ALL_CASES[$i]}" = "$1" ] && echo $((i + 1)); done; return 0; }

run_case() {
  local name=$1 idx dir w iface=eth0 target=$ESA4 scenario=$1 tz=-18000 skew=3 idle=3 nconn=1
  idx=$(case_index "$name")
  dir=$OUT/$name
  w=$WORK/$name
  case $name in
    ipv6-delivered) scenario=delivered-quit; target=$ESA6; tz=3600; skew=-2 ;;
    any-interface) scenario=delivered-quit; iface=any ;;
    burst) nconn=25 ;;
  esac
  local first_icid=$((40000 + idx * 1000 + 1)) first_mid=$((70000 + idx * 1000 + 1))
  local first_dcid=$((90000 + idx * 1000 + 1))
  echo "== $name"
  rm -rf "$dir" "$w"
  mkdir -p "$dir" "$w"

  local server_args=(--listen "$ESA4" --listen "$ESA6" --port 25 --idle-timeout "$idle"
                     --tz-offset "$tz" --skew "$skew" --first-icid "$first_icid"
                     --first-mid "$first_mid" --first-dcid "$first_dcid"
                     --cert "$WORK/cert.pem" --key "$WORK/key.pem")
  # --immediate-mode: libpcap hands each packet over at once (TPACKET_V3 otherwise holds them
  # in a block for up to 1 s, and tcpdump drops an unretired block when it is interrupted).
  local tcpdump_args=(-i "$iface" -s 0 -U --immediate-mode -Z root -w "$dir/capture.pcap")
  local client_args=("$scenario" --server "$target" --port 25)

  # background jobs: `ip netns exec` execs the program, so $! is the program's own pid
  ip netns exec "$NS_ESA" "$PY" "$HERE/esa_server.py" "${server_args[@]}" --maillog "$dir/mail_logs" \
    --sessions "$w/sessions.jsonl" --ready-file "$w/server.ready" >"$w/server.out" 2>"$w/server.err" &
  local server_pid=$!; PIDS+=("$server_pid")
  wait_file "$w/server.ready" 10

  ip netns exec "$NS_ESA" tcpdump "${tcpdump_args[@]}" >"$w/tcpdump.out" 2>"$w/tcpdump.err" &
  local tcpdump_pid=$!; PIDS+=("$tcpdump_pid")
  wait_file "$w/tcpdump.err" 10 1 "listening on"
  sleep 0.2

  if [ "$name" = still-open ]; then
    ip netns exec "$NS_CLI" "$PY" "$HERE/clients.py" "${client_args[@]}" --intent "$w/intent.jsonl" \
      --marker "$w/marker" >"$w/client.out" 2>"$w/client.err" &
    local client_pid=$!; PIDS+=("$client_pid")
    wait_file "$w/marker" 20
    sleep 0.5
    stop_pid "$tcpdump_pid" INT          # capture ends with the connection still open
    wait "$client_pid" || die "$name: client failed"
    stop_pid "$client_pid" TERM
    wait_file "$w/sessions.jsonl" 30 "$nconn"
  else
    nsx "$NS_CLI" "$PY" "$HERE/clients.py" "${client_args[@]}" --intent "$w/intent.jsonl" \
      || die "$name: client failed"
    wait_file "$w/sessions.jsonl" 30 "$nconn"
    sleep 0.5                            # last ACKs
    stop_pid "$tcpdump_pid" INT
  fi
  stop_pid "$server_pid" TERM
  check_tcpdump "$name" "$w/tcpdump.err" "$dir/capture.pcap"

  "$PY" "$HERE/expected.py" --case "$name" --dir "$dir" --sessions "$w/sessions.jsonl" \
    --intent "$w/intent.jsonl" --tz-offset "$tz" --skew "$skew" || die "$name: expected.json check failed"

  {
    echo "# $name"
    echo
    echo "${DESC[$name]}"
    echo
    echo "Made by \`sudo scripts/make-captures/make.sh $name\`, which ran (namespaces and topology in make.sh):"
    echo
    echo '```'
    echo "ip netns exec $NS_ESA python3 scripts/make-captures/esa_server.py ${server_args[*]} --maillog mail_logs" \
      | sed "s#$WORK/#\$WORK/#g"
    echo "ip netns exec $NS_ESA tcpdump ${tcpdump_args[*]}" | sed "s#$dir/##"
    echo "ip netns exec $NS_CLI python3 scripts/make-captures/clients.py ${client_args[*]}"
    echo '```'
    if [[ $name == starttls-* ]]; then
      echo
      echo "The server certificate is made fresh on each run (so the TLS bytes differ every time):"
      echo "\`openssl req -x509 -newkey rsa:2048 -nodes -days 7 -subj /CN=esa.example.com -keyout key.pem -out cert.pem\`."
    fi
    echo
    echo "Files: \`capture.pcap\` (tcpdump in the ESA namespace), \`mail_logs\` (the listener's ESA-format log;"
    echo "header says UTC offset $tz s, clock skewed by $skew s more), \`expected.json\` (computed from the"
    echo "capture with tshark by expected.py and checked against the client's intent)."
  } >"$dir/README.md"
  ls -l "$dir" | sed 1d
}

echo "work dir: $WORK"
openssl req -x509 -newkey rsa:2048 -nodes -days 7 -subj "/CN=esa.example.com" \
  -keyout "$WORK/key.pem" -out "$WORK/cert.pem" 2>/dev/null
setup_topology
for c in "${CASES[@]}"; do run_case "$c"; done
echo "done: ${CASES[*]}"
