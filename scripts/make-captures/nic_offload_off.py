#!/usr/bin/env python3
"""Turn off checksum/segmentation offloads on an interface (like `ethtool -K IF tx off sg off
tso off gso off gro off`), with the legacy SIOCETHTOOL ioctls, stdlib only.

Why: on veth pairs the kernel otherwise hands tcpdump 64 KB "super-packets" (TSO/GSO) and
packets with unfilled checksums (tx checksum offload), which a real NIC capture would not show.
Run inside the interface's namespace:  ip netns exec NS python3 nic_offload_off.py IFNAME...
"""
import ctypes
import fcntl
import socket
import struct
import sys

SIOCETHTOOL = 0x8946
# (name, set-command) from linux/ethtool.h; order matters: tx csum off implies sg/tso off.
COMMANDS = [
    ("gro", 0x0000002C),  # ETHTOOL_SGRO
    ("gso", 0x00000024),  # ETHTOOL_SGSO
    ("tso", 0x0000001F),  # ETHTOOL_STSO
    ("sg", 0x00000019),   # ETHTOOL_SSG
    ("tx", 0x00000017),   # ETHTOOL_STXCSUM
]


def set_off(sock, ifname, cmd):
    val = ctypes.create_string_buffer(struct.pack("II", cmd, 0), 8)
    ifreq = struct.pack("16sP", ifname.encode(), ctypes.addressof(val)) + b"\0" * 16
    fcntl.ioctl(sock.fileno(), SIOCETHTOOL, ifreq)


def main():
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    for ifname in sys.argv[1:]:
        for name, cmd in COMMANDS:
            try:
                set_off(s, ifname, cmd)
            except OSError as e:
                print(f"nic_offload_off: {ifname} {name} off: {e}", file=sys.stderr)


if __name__ == "__main__":
    main()
