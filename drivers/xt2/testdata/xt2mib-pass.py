#!/usr/bin/env python3
"""net-snmp `pass` handler serving the XT2-MIB of docs/xt2-cli.md for tests.

snmpd runs it as `xt2mib-pass.py -g OID` (get) or `-n OID` (get-next) and
reads three lines back: the OID, the type and the value; nothing means no
such object."""
import sys

BASE = ".1.3.6.1.4.1.99999.2"
OBJECTS = [  # (OID, type, value), in OID order
    (BASE + ".1.0", "integer", "3"),            # pppState up(3)
    (BASE + ".2.0", "string", "none"),           # pppLastError
    (BASE + ".3.0", "ipaddress", "100.64.7.9"),  # pppAddress
    (BASE + ".4.0", "integer", "2"),            # bbmsBound bound(2)
    (BASE + ".5.0", "string", "88001234"),       # bbmsCustomer
]


def key(oid):
    return [int(p) for p in oid.strip(".").split(".") if p]


def main():
    if len(sys.argv) != 3:
        return
    op, oid = sys.argv[1], sys.argv[2]
    if op == "-g":
        hits = [o for o in OBJECTS if o[0] == oid]
    elif op == "-n":
        hits = [o for o in OBJECTS if key(o[0]) > key(oid)][:1]
    else:
        return
    for o in hits:
        print("\n".join(o))


main()
