#!/usr/bin/env python3
"""Share of connections given their true ICID.

Usage: scripts/icid-accuracy.py TRUTH.json REPORT.json [--show N]

TRUTH.json is the `truth.json` gen_capture writes; REPORT.json is
`icidtrace analyze CAPTURE --log LOG --format json`. Prints the share right, the wrong ones
counted by (true outcome -> outcome of the connection whose ICID it got), and the first N wrong.
"""

import collections
import json
import sys


def main() -> int:
    args = sys.argv[1:]
    show = 0
    if "--show" in args:
        i = args.index("--show")
        show = int(args[i + 1])
        del args[i : i + 2]
    if len(args) != 2:
        print(__doc__, file=sys.stderr)
        return 2
    with open(args[0]) as f:
        truth = json.load(f)
    with open(args[1]) as f:
        report = json.load(f)
    got = {c["client"]: c.get("icid") for c in report["connections"]}
    outcome_of_icid = {
        t["icid"]: t["outcome"] for t in truth["connections"] if t["icid"] is not None
    }
    right = 0
    kinds = collections.Counter()
    wrong = []
    for t in truth["connections"]:
        g = got.get(t["client"], "missing")
        if g == t["icid"]:
            right += 1
            continue
        other = "none" if g is None else outcome_of_icid.get(g, "missing" if g == "missing" else "?")
        kinds[(t["outcome"], other)] += 1
        wrong.append((t["client"], t["outcome"], t["icid"], g))
    n = len(truth["connections"])
    print(f"{right}/{n} right ({100.0 * right / max(n, 1):.2f}%), {n - right} wrong")
    for (want, other), k in kinds.most_common():
        print(f"  {k:6}  {want} -> {other}")
    for w in wrong[:show]:
        print("  ", *w)
    return 0


if __name__ == "__main__":
    sys.exit(main())
