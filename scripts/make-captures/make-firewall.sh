#!/usr/bin/env bash
# Regenerate icidtrace's middlebox and TLS test captures (captures/fw-*/, captures/tls-*/).
#
#   sudo scripts/make-captures/make-firewall.sh                    # all cases
#   sudo scripts/make-captures/make-firewall.sh fw-injected-rst    # some cases
#
# Needs what make.sh needs (root, iproute2, tcpdump, tshark + capinfos, python3 3.11, openssl)
# plus iptables (nf_tables or legacy backend; uses the string match, REJECT --reject-with
# tcp-reset and NFQUEUE targets).
#
# Same topology and addresses as make.sh, but built afresh for every case (the router's MTU,
# its iptables rules and the client's learnt path MTU must not leak from one case to the next):
#
#   ict-client                 ict-router                          ict-esa
#   eth0 198.51.100.10/24 ---- cli0 198.51.100.1 | esa0 192.0.2.1 ---- eth0 192.0.2.25/24
#
# What the router does differs per case (see router_setup): inject RSTs with iptables REJECT,
# shrink the MTU of its link to the ESA with or without ICMP "fragmentation needed", or run
# fw_inspect.py, an ASA-like ESMTP inspection on an NFQUEUE. tcpdump runs in the ESA namespace
# (capture.pcap, as the appliance would capture) and, for the cases that need the other view,
# in the client namespace too (capture-client.pcap). esa_server.py writes the mail_logs,
# fw_clients.py makes the connection and records what it meant, and fw_expected.py derives
# expected.json (with findings) from the captures with tshark and fails on any disagreement.
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO=$(cd "$HERE/../.." && pwd)
OUT=${CAPTURES_DIR:-$REPO/captures}

ALL_CASES=(fw-injected-rst fw-rst-both-ends fw-rst-after-quit fw-mtu-blackhole fw-mtu-icmp
           fw-smtp-inspect fw-char-per-segment tls-handshake-failed tls-implicit-465
           fw-limit-line fw-limit-rcpt fw-limit-header)
# make.sh's cases are 1..15: these continue the numbering so ICIDs/MIDs stay unique and stable
FIRST_INDEX=16

declare -A DESC=(
  [fw-injected-rst]="The router drops the ESA's '354' and sends the ESA an RST in the client's name (iptables REJECT --reject-with tcp-reset). On the ESA side the RST arrives with the router's TTL (64) and IP ID 0 while the client's own packets arrive with TTL 63 and IP IDs counting up; the client, which never sent it, keeps talking (its DATA retransmission) and the ESA answers that with an RST of its own."
  [fw-rst-both-ends]="The client pipelines RCPT and DATA; the router drops the DATA and resets the client in the ESA's name, and drops the ESA's 250 for the RCPT and resets the ESA in the client's name. Each end gets an RST the other never sent (TTL 64 and IP ID 0 on both sides, where the real peer's packets arrive with TTL 63)."
  [fw-rst-after-quit]="Negative control: message delivered, QUIT, 221, the ESA's FIN, then the client closes with RST (SO_LINGER 0). The RST is the client's own (TTL 63, IP ID next in its sequence): nothing was aborted."
  [fw-mtu-blackhole]="Path MTU black hole: the router's link to the ESA has MTU 1000 and the router's ICMP 'fragmentation needed' is dropped. The client's full-size (1500-byte) body segments are lost again and again; only the small last segment reaches the ESA, out of order. After its idle timeout (4 s here) the ESA sends 421 and closes."
  [fw-mtu-icmp]="Control for fw-mtu-blackhole: the same 1000-byte MTU, but the ICMP 'fragmentation needed' reaches the client, which lowers its path MTU, resends in 948-byte segments, and the message is delivered."
  [fw-smtp-inspect]="An ASA-like ESMTP inspection in the router (fw_inspect.py on an NFQUEUE, same-length rewrites, no proxy): the client sees the banner as '220 ****…' and STARTTLS/CHUNKING as '250-XXXXXXXA'/'250-XXXXXXXB'; the ESA gets the client's 'VRFY bob' as 'XXXXXXXX' and answers 500. The message is delivered in clear text."
  [fw-char-per-segment]="The client sends 'EHLO mta1.example.net' one character per TCP segment (TCP_NODELAY, 10 ms apart), then a normal delivered session."
  [tls-handshake-failed]="STARTTLS, 220, then a ClientHello offering only AES128-SHA; the ESA (ECDHE-RSA-AES256-GCM-SHA384 only) answers with a fatal handshake_failure alert and closes. The log says 'TLS failed' and 'ICID lost'."
  [fw-limit-line]="A firewall's ESMTP command-line limit (fw_inspect.py --max-line 512 --action reset, like an ASA's \`match cmd line length gt 512\` with \`reset\`): after MAIL, the client sends a 2,049-octet RCPT line. The firewall judges the line when its end arrives: the first segment (1,448 octets) reaches the ESA, the segment with the CRLF is dropped, and each end gets an RST in the other's name (the router's TTL 64, where the real peer's packets arrive with 63)."
  [fw-limit-rcpt]="A firewall's recipient-count limit (fw_inspect.py --max-rcpt 3 --action reset, like an ASA's \`match cmd RCPT count gt 3\` with \`reset\`): three RCPTs are answered 250; the fourth is dropped and each end gets an RST in the other's name. The ESA never sees the fourth RCPT."
  [fw-limit-header]="A firewall's header-size limit (fw_inspect.py --max-header-bytes 10000 --action reset, like an ASA's \`match header length gt 10000\` with \`reset\`): after DATA and 354 the client sends a message with a 14,000-octet header section; the segment that takes the section past 10,000 octets is dropped and each end gets an RST in the other's name. The ESA gets the first 8,688 octets of the header section."
  [tls-implicit-465]="Implicit TLS (SMTPS) on port 465: TLS from the first byte, the banner and the whole session encrypted, a message delivered, QUIT, close_notify both ways, FINs. (tshark needs \`-d tcp.port==465,tls\` to dissect it.)"
)

# which cases also capture in the client namespace
declare -A CLIENT_CAPTURE=([fw-injected-rst]=1 [fw-rst-both-ends]=1 [fw-mtu-blackhole]=1
                           [fw-mtu-icmp]=1 [fw-smtp-inspect]=1 [fw-limit-line]=1
                           [fw-limit-rcpt]=1 [fw-limit-header]=1)

CLI4=198.51.100.10
RTR_CLI4=198.51.100.1
RTR_ESA4=192.0.2.1
ESA4=192.0.2.25
MAC_CLI=02:00:00:00:01:10; MAC_RTR_CLI=02:00:00:00:01:01
MAC_RTR_ESA=02:00:00:00:02:01; MAC_ESA=02:00:00:00:02:25
NS_CLI=ict-client; NS_RTR=ict-router; NS_ESA=ict-esa

die() { echo "make-firewall.sh: $*" >&2; exit 1; }

[ "$(id -u)" = 0 ] || die "must run as root (network namespaces, tcpdump, iptables)"
for t in ip tcpdump tshark capinfos python3 openssl flock iptables; do
  command -v "$t" >/dev/null || die "missing tool: $t (apt-get install -y iptables for iptables)"
done
PY=$(python3 -c 'import sys; print(sys.executable)')

CASES=("$@")
[ ${#CASES[@]} -gt 0 ] || CASES=("${ALL_CASES[@]}")
for c in "${CASES[@]}"; do [ -n "${DESC[$c]:-}" ] || die "unknown case: $c (known: ${ALL_CASES[*]})"; done

# same lock as make.sh: both use the same namespace names
exec 9>/run/lock/icidtrace-make-captures.lock
flock -n 9 || die "another make.sh / make-firewall.sh run is in progress"

WORK=$(mktemp -d /tmp/icidtrace-fw-captures.XXXXXX)
PIDS=()

teardown() {
  for ns in "$NS_CLI" "$NS_RTR" "$NS_ESA"; do ip netns del "$ns" 2>/dev/null || true; done
}

cleanup() {
  local rc=$?
  for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
  for p in "${PIDS[@]}"; do wait "$p" 2>/dev/null || true; done
  teardown
  if [ "$rc" = 0 ]; then rm -rf "$WORK"; else echo "make-firewall.sh: failed (rc=$rc); work files kept in $WORK" >&2; fi
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

nsx() { local ns=$1; shift; ip netns exec "$ns" "$@"; }

setup_topology() {  # IPv4 only; like make.sh's (offloads off, static neighbours, no early retrans)
  for ns in "$NS_CLI" "$NS_RTR" "$NS_ESA"; do
    ip netns del "$ns" 2>/dev/null || true   # stale from a killed run (names are ours)
    ip netns add "$ns"
    nsx "$ns" ip link set lo up
    nsx "$ns" sysctl -qw net.ipv6.conf.all.accept_dad=0 net.ipv6.conf.default.accept_dad=0 \
      net.ipv6.conf.all.accept_ra=0 net.ipv6.conf.default.accept_ra=0 \
      net.ipv6.conf.default.mldv1_unsolicited_report_interval=1 \
      net.ipv6.conf.default.mldv2_unsolicited_report_interval=1
  done
  ip link add name eth0 address "$MAC_CLI" netns "$NS_CLI" type veth \
    peer name cli0 address "$MAC_RTR_CLI" netns "$NS_RTR"
  ip link add name eth0 address "$MAC_ESA" netns "$NS_ESA" type veth \
    peer name esa0 address "$MAC_RTR_ESA" netns "$NS_RTR"
  nsx "$NS_RTR" sysctl -qw net.ipv4.ip_forward=1
  nsx "$NS_CLI" sysctl -qw net.ipv4.tcp_early_retrans=0
  nsx "$NS_ESA" sysctl -qw net.ipv4.tcp_early_retrans=0
  # no PLPMTUD (the kernel default, stated): a black hole stays a black hole
  nsx "$NS_CLI" sysctl -qw net.ipv4.tcp_mtu_probing=0

  nsx "$NS_CLI" ip addr add "$CLI4/24" dev eth0
  nsx "$NS_RTR" ip addr add "$RTR_CLI4/24" dev cli0
  nsx "$NS_RTR" ip addr add "$RTR_ESA4/24" dev esa0
  nsx "$NS_ESA" ip addr add "$ESA4/24" dev eth0

  nsx "$NS_CLI" "$PY" "$HERE/nic_offload_off.py" eth0
  nsx "$NS_RTR" "$PY" "$HERE/nic_offload_off.py" cli0 esa0
  nsx "$NS_ESA" "$PY" "$HERE/nic_offload_off.py" eth0

  nsx "$NS_CLI" ip link set eth0 up
  nsx "$NS_RTR" ip link set cli0 up
  nsx "$NS_RTR" ip link set esa0 up
  nsx "$NS_ESA" ip link set eth0 up

  nsx "$NS_CLI" ip route add default via "$RTR_CLI4"
  nsx "$NS_ESA" ip route add default via "$RTR_ESA4"

  nsx "$NS_CLI" ip neigh replace "$RTR_CLI4" lladdr "$MAC_RTR_CLI" dev eth0 nud permanent
  nsx "$NS_RTR" ip neigh replace "$CLI4" lladdr "$MAC_CLI" dev cli0 nud permanent
  nsx "$NS_RTR" ip neigh replace "$ESA4" lladdr "$MAC_ESA" dev esa0 nud permanent
  nsx "$NS_ESA" ip neigh replace "$RTR_ESA4" lladdr "$MAC_RTR_ESA" dev eth0 nud permanent

  check_path "$ESA4" "$CLI4"
  sleep 1   # let interface-up chatter pass before any capture starts
}

check_path() {  # one TCP connection through the router
  ip netns exec "$NS_ESA" "$PY" -c '
import socket, sys
s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind((sys.argv[1], 9)); s.listen(1); s.settimeout(5)
c, peer = s.accept(); assert peer[0] == sys.argv[2], peer; c.close()' "$1" "$2" &
  local srv=$!
  sleep 0.3
  nsx "$NS_CLI" "$PY" -c '
import socket, sys, time
for i in range(50):   # the listener may still be starting: retry "connection refused"
    try:
        socket.create_connection((sys.argv[1], 9), timeout=5).close()
        break
    except ConnectionRefusedError:
        time.sleep(0.1)
else:
    sys.exit(1)' "$1" || die "no path client -> $1"
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
    die "$name: incomplete capture $pcap (captured=$captured received=$received dropped=$dropped in file=$inpcap)"
  fi
}

case_index() { local i; for i in "${!ALL_CASES[@]}"; do [ "${ALL_CASES[$i]}" = "$1" ] && echo $((i + FIRST_INDEX)); done; return 0; }

# fw_inspect.py on an NFQUEUE for every forwarded port-25 packet; extra arguments go to it.
start_inspector() {
  local w=$1; shift
  rtr iptables -A FORWARD -p tcp --dport 25 -j NFQUEUE --queue-num 0
  rtr iptables -A FORWARD -p tcp --sport 25 -j NFQUEUE --queue-num 0
  echo "ip netns exec $NS_RTR python3 scripts/make-captures/fw_inspect.py --queue 0${*:+ $*} --log \$WORK/inspect.jsonl" >>"$w/router.cmds"
  ip netns exec "$NS_RTR" "$PY" "$HERE/fw_inspect.py" --queue 0 "$@" --log "$w/inspect.jsonl" \
    --ready-file "$w/inspect.ready" >"$w/inspect.out" 2>"$w/inspect.err" &
  INSPECT_PID=$!; PIDS+=("$INSPECT_PID")
  wait_file "$w/inspect.ready" 10
}

# The router's part of each case. Every command is also written to $1 (for the README).
router_setup() {
  local name=$1 w=$2 cmds=$2/router.cmds
  : >"$cmds"
  rtr() {
    { printf 'ip netns exec %s' "$NS_RTR"
      local a; for a in "$@"; do
        if [[ $a =~ [[:space:]] ]]; then printf ' "%s"' "$a"; else printf ' %s' "$a"; fi
      done; echo; } >>"$cmds"
    nsx "$NS_RTR" "$@"
  }
  case $name in
    fw-injected-rst)
      rtr iptables -A FORWARD -p tcp --sport 25 -m string --string "354 " --algo bm \
        -j REJECT --reject-with tcp-reset ;;
    fw-rst-both-ends)
      rtr iptables -A FORWARD -p tcp --dport 25 -m string --string "DATA" --algo bm \
        -j REJECT --reject-with tcp-reset
      rtr iptables -A FORWARD -p tcp --sport 25 -m string --string "250 recipient" --algo bm \
        -j REJECT --reject-with tcp-reset ;;
    fw-mtu-blackhole)
      rtr ip link set esa0 mtu 1000
      # The router makes the ICMP itself, so it leaves through OUTPUT (a FORWARD rule would
      # never see it): dropping it there is "a firewall between the router and the client".
      rtr iptables -A OUTPUT -p icmp --icmp-type fragmentation-needed -j DROP ;;
    fw-mtu-icmp)
      rtr ip link set esa0 mtu 1000 ;;
    fw-smtp-inspect) start_inspector "$w" ;;
    fw-limit-line) start_inspector "$w" --no-mask --max-line 512 --action reset ;;
    fw-limit-rcpt) start_inspector "$w" --no-mask --max-rcpt 3 --action reset ;;
    fw-limit-header) start_inspector "$w" --no-mask --max-header-bytes 10000 --action reset ;;
  esac
}

run_case() {
  local name=$1 idx dir w port=25 tz=-18000 skew=3 idle=4 extra=() settle=0.5
  idx=$(case_index "$name")
  dir=$OUT/$name
  w=$WORK/$name
  case $name in
    tls-handshake-failed) extra=(--tls-ciphers ECDHE-RSA-AES256-GCM-SHA384) ;;
    tls-implicit-465) port=465; extra=(--implicit-tls) ;;
    fw-mtu-blackhole) settle=1.0 ;;
  esac
  local first_icid=$((40000 + idx * 1000 + 1)) first_mid=$((70000 + idx * 1000 + 1))
  local first_dcid=$((90000 + idx * 1000 + 1))
  echo "== $name"
  rm -rf "$dir" "$w"
  mkdir -p "$dir" "$w"
  INSPECT_PID=
  setup_topology
  router_setup "$name" "$w"

  local server_args=(--listen "$ESA4" --port "$port" --idle-timeout "$idle"
                     --tz-offset "$tz" --skew "$skew" --first-icid "$first_icid"
                     --first-mid "$first_mid" --first-dcid "$first_dcid"
                     --cert "$WORK/cert.pem" --key "$WORK/key.pem" "${extra[@]}")
  local tcpdump_args=(-i eth0 -s 0 -U --immediate-mode -Z root)
  local client_args=("$name" --server "$ESA4" --port "$port")

  ip netns exec "$NS_ESA" "$PY" "$HERE/esa_server.py" "${server_args[@]}" --maillog "$dir/mail_logs" \
    --sessions "$w/sessions.jsonl" --ready-file "$w/server.ready" >"$w/server.out" 2>"$w/server.err" &
  local server_pid=$!; PIDS+=("$server_pid")
  wait_file "$w/server.ready" 10

  ip netns exec "$NS_ESA" tcpdump "${tcpdump_args[@]}" -w "$dir/capture.pcap" \
    >"$w/tcpdump.out" 2>"$w/tcpdump.err" &
  local tcpdump_pid=$!; PIDS+=("$tcpdump_pid")
  wait_file "$w/tcpdump.err" 10 1 "listening on"
  local ctcpdump_pid=
  if [ -n "${CLIENT_CAPTURE[$name]:-}" ]; then
    ip netns exec "$NS_CLI" tcpdump "${tcpdump_args[@]}" -w "$dir/capture-client.pcap" \
      >"$w/ctcpdump.out" 2>"$w/ctcpdump.err" &
    ctcpdump_pid=$!; PIDS+=("$ctcpdump_pid")
    wait_file "$w/ctcpdump.err" 10 1 "listening on"
  fi
  sleep 0.2

  nsx "$NS_CLI" "$PY" "$HERE/fw_clients.py" "${client_args[@]}" --intent "$w/intent.jsonl" \
    || die "$name: client failed"
  wait_file "$w/sessions.jsonl" 30 1
  sleep "$settle"                        # last ACKs (black hole: the client still retransmitting)
  stop_pid "$tcpdump_pid" INT
  [ -z "$ctcpdump_pid" ] || stop_pid "$ctcpdump_pid" INT
  stop_pid "$server_pid" TERM
  [ -z "$INSPECT_PID" ] || stop_pid "$INSPECT_PID" TERM
  check_tcpdump "$name" "$w/tcpdump.err" "$dir/capture.pcap"
  [ -z "$ctcpdump_pid" ] || check_tcpdump "$name" "$w/ctcpdump.err" "$dir/capture-client.pcap"

  local exp_args=(--case "$name" --dir "$dir" --sessions "$w/sessions.jsonl" --intent "$w/intent.jsonl"
                  --tz-offset "$tz" --skew "$skew" --port "$port")
  [ -z "$INSPECT_PID" ] || exp_args+=(--inspect-log "$w/inspect.jsonl")
  "$PY" "$HERE/fw_expected.py" "${exp_args[@]}" || die "$name: expected.json check failed"

  {
    echo "# $name"
    echo
    echo "${DESC[$name]}"
    echo
    echo "Made by \`sudo scripts/make-captures/make-firewall.sh $name\`, which ran (namespaces and"
    echo "topology in make-firewall.sh, rebuilt for this case alone):"
    echo
    echo '```'
    cat "$w/router.cmds"
    echo "ip netns exec $NS_ESA python3 scripts/make-captures/esa_server.py ${server_args[*]} --maillog mail_logs" \
      | sed "s#$WORK/#\$WORK/#g"
    echo "ip netns exec $NS_ESA tcpdump ${tcpdump_args[*]} -w capture.pcap"
    [ -z "$ctcpdump_pid" ] || echo "ip netns exec $NS_CLI tcpdump ${tcpdump_args[*]} -w capture-client.pcap"
    echo "ip netns exec $NS_CLI python3 scripts/make-captures/fw_clients.py ${client_args[*]}"
    echo '```'
    if [[ $name == tls-* ]]; then
      echo
      echo "The server certificate is made fresh on each run (so the TLS bytes differ every time):"
      echo "\`openssl req -x509 -newkey rsa:2048 -nodes -days 7 -subj /CN=esa.example.com -keyout key.pem -out cert.pem\`."
    fi
    echo
    echo "Files: \`capture.pcap\` (tcpdump in the ESA namespace),"
    [ -z "$ctcpdump_pid" ] || echo "\`capture-client.pcap\` (tcpdump in the client namespace, the other end of the same connection),"
    echo "\`mail_logs\` (the listener's ESA-format log; header says UTC offset $tz s, clock skewed by $skew s"
    echo "more), \`expected.json\` (computed from the capture(s) with tshark by fw_expected.py and checked"
    echo "against the client's intent; \`findings\` per connection, \`client_capture\` for capture-client.pcap)."
    echo
    echo "What the packets show:"
    echo
    "$PY" "$HERE/fw_expected.py" --describe "$dir/expected.json"
  } >"$dir/README.md"
  ls -l "$dir" | sed 1d
  teardown
}

echo "work dir: $WORK"
openssl req -x509 -newkey rsa:2048 -nodes -days 7 -subj "/CN=esa.example.com" \
  -keyout "$WORK/key.pem" -out "$WORK/cert.pem" 2>/dev/null
for c in "${CASES[@]}"; do run_case "$c"; done
echo "done: ${CASES[*]}"
