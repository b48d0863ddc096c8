#!/usr/bin/env python3
"""net-snmp `pass` handler with one writable string, for Set tests.

Usage in snmpd.conf: pass .1.3.6.1.4.1.99999.9 python3 rw-pass.py STOREFILE
  -g OID            get: prints OID, type, value
  -n OID            get-next
  -s OID TYPE VALUE set: prints nothing on success, "wrong-type" or "not-writable" on refusal
"""
import os
import sys

OID = ".1.3.6.1.4.1.99999.9.1.0"


def main():
    store, op, oid = sys.argv[1], sys.argv[2], sys.argv[3]
    value = open(store).read() if os.path.exists(store) else "initial"
    if op == "-g" and oid == OID or op == "-n" and oid < OID and oid.startswith(".1.3.6.1.4.1.99999.9"):
        print(OID)
        print("string")
        print(value)
    elif op == "-s":
        if oid != OID:
            print("not-writable")
        elif sys.argv[4] != "string":
            print("wrong-type")
        else:
            with open(store, "w") as f:
                f.write(sys.argv[5])


main()
