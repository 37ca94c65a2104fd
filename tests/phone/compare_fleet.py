#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""Phone for phone: what `itl-sign coverage --json` and `itl-sign plan --json` predicted before a
publish, against what the simulated phones (tests/phone/phone-sim result lines) then did.

  compare_fleet.py --boot RESULTS [--reset RESULTS] [--coverage JSON] [--plan JSON]

--boot: the phones' results when they fetched the published ITL; --reset: their results when
the same ITL re-signed with the recovery key (itl-sign reset) was served next, which proves
"rescuable by reset" and "stranded". Every phone of the results must be in each prediction and
the reverse. Exit 1 with the mismatches listed (at most 20), 0 when every phone matches.

What a prediction means for a phone (phone-sim's itl= words, tests/phone/README.md):
  coverage verdict                    first fetch     the reset ITL
  current                             current
  updates directly                    accept
  updates via TVS                     accept-via-tvs
  rescuable by reset                  reject          accept
  stranded (needs manual ITL delete)  reject          reject
  unknown ITL                         reject          reject   (the fleet's unknown phones
                                                                come from another cluster)
  plan action: accept -> accept, current or first-install; accept-via-tvs -> accept-via-tvs;
  reject -> reject. plan outcome: current -> took it (accept, accept-via-tvs, current,
  first-install); rescuable by reset, stranded, unknown ITL -> as coverage's above.
A config signed by the cluster's key is accepted exactly when the phone took the ITL (or
already held it).
"""
import argparse
import json
import sys

TOOK = {"accept", "accept-via-tvs", "current", "first-install"}
COVERAGE_FIRST = {"current": {"current"}, "updates directly": {"accept"},
                  "updates via TVS": {"accept-via-tvs"}, "rescuable by reset": {"reject"},
                  "stranded (needs manual ITL delete)": {"reject"}, "unknown ITL": {"reject"}}
PLAN_ACTION = {"accept": {"accept", "current", "first-install"},
               "accept-via-tvs": {"accept-via-tvs"}, "reject": {"reject"}}
PLAN_OUTCOME = {"current": TOOK, "rescuable by reset": {"reject"}, "stranded": {"reject"},
                "unknown ITL": {"reject"}}
AFTER_RESET = {"rescuable by reset": "accept", "stranded (needs manual ITL delete)": "reject",
               "stranded": "reject", "unknown ITL": "reject"}


def results(path):
    phones = {}
    for line in open(path):
        words = line.split()
        phones[words[0]] = dict(w.split("=", 1) for w in words[1:])
    return phones


def check(name, predicted, boot, reset, first, bad):
    """predicted: device -> (what was said, the key of `first`, the key of AFTER_RESET)."""
    if set(predicted) != set(boot):
        bad.append(f"{name} lists {len(predicted)} phones, {len(boot)} booted; differing: "
                   f"{sorted(set(predicted) ^ set(boot))[:5]}")
        return
    for dev in sorted(boot):
        said, key, reset_key = predicted[dev]
        got = boot[dev]["itl"]
        if got not in first[key]:
            bad.append(f"{dev}: {name} said {said}, the phone did itl={got}")
        if reset is not None and reset_key in AFTER_RESET and dev in reset:
            if reset[dev]["itl"] != AFTER_RESET[reset_key]:
                bad.append(f"{dev}: {name} said {said}, the reset ITL was "
                           f"itl={reset[dev]['itl']}")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--boot", required=True)
    ap.add_argument("--reset")
    ap.add_argument("--coverage")
    ap.add_argument("--plan")
    a = ap.parse_args()
    if not a.coverage and not a.plan:
        sys.exit("compare_fleet.py: nothing to compare: --coverage and/or --plan")
    boot = results(a.boot)
    reset = results(a.reset) if a.reset else None
    bad = []
    for dev, r in boot.items():
        want = "accept" if r["itl"] in TOOK else "reject"
        if r["config"] != want:
            bad.append(f"{dev}: itl={r['itl']} but config={r['config']}")
    if a.coverage:
        cov = {p["device"]: (repr(p["verdict"]), p["verdict"], p["verdict"])
               for p in json.load(open(a.coverage))["phones"]}
        check("coverage", cov, boot, reset, COVERAGE_FIRST, bad)
    if a.plan:
        phones = json.load(open(a.plan))["phones"]
        by_action = {p["device"]: (f"action {p['action']}", p["action"], None) for p in phones}
        by_outcome = {p["device"]: (f"outcome {p['outcome']!r}", p["outcome"], p["outcome"])
                      for p in phones}
        check("plan", by_action, boot, None, PLAN_ACTION, bad)
        check("plan", by_outcome, boot, reset, PLAN_OUTCOME, bad)
    if bad:
        sys.exit("\n".join(bad[:20]) + f"\n({len(bad)} mismatches)")


if __name__ == "__main__":
    main()
