#!/usr/bin/env python3
"""A small XT-2 CLI (docs/xt2-cli.md) for sshd's ForceCommand in tests.

The PTY echoes input (ECHO on, ICANON off so the pager sees a single space);
output lines end in "\n", which the PTY turns into "\r\n"; the prompt has no
newline. Deterministic: the same input gives the same output.
"""
import os
import re
import sys
import termios

FD_IN, FD_OUT = 0, 1
PAGE = 23  # lines per page; the 24th terminal line shows the pager

if os.isatty(FD_IN):
    attrs = termios.tcgetattr(FD_IN)
    attrs[3] &= ~(termios.ICANON | termios.ECHOCTL)
    attrs[6][termios.VMIN] = 1
    attrs[6][termios.VTIME] = 0
    termios.tcsetattr(FD_IN, termios.TCSANOW, attrs)

state = {"sysname": "XT2", "views": [], "paging": True, "candidate": [], "running": []}
IFACE = re.compile(r"^(GigabitEthernet0/0/[0-4]|Dialer\d+|Vlanif\d+|LoopBack\d+)$")
SYSTEM_CMDS = ("sysname ", "ip route-static ", "bbms bind ", "undo ", "dns ", "nat ")
VIEW_CMDS = ("dialer ", "ppp ", "ip ", "nat ", "pppoe-client ", "undo ", "description ",
             "shutdown", "rule ", "gateway-list ", "network ", "dns-list ")


def out(s):
    os.write(FD_OUT, s.encode())


def getc():
    b = os.read(FD_IN, 1)
    if not b:
        sys.exit(0)
    return b.decode(errors="replace")


def getline():
    s = ""
    while True:
        ch = getc()
        if ch in "\n\r":
            return s
        s += ch


def prompt():
    v = state["views"]
    if not v:
        return "<%s>" % state["sysname"]
    if len(v) == 1:
        return "[%s]" % state["sysname"]
    return "[%s-%s]" % (state["sysname"], v[-1])


def show(lines):
    n = 0
    for line in lines:
        if state["paging"] and n == PAGE:
            out("  ---- More ----")
            ch = getc()
            out("\r" + " " * 18 + "\r")
            if ch == "q":
                return
            n = 0
        out(line + "\n")
        n += 1


def current_config():
    lines = ["#", "sysname %s" % state["sysname"], "#"]
    for i in range(5):
        lines += ["interface GigabitEthernet0/0/%d" % i,
                  " description %s port %d" % ("WAN" if i == 0 else "LAN", i),
                  " undo shutdown", "#"]
    lines += state["running"]
    n = 1
    while len(lines) < 59:
        lines.append(" snmp-agent trap enable feature-name ITEM%02d" % n)
        n += 1
    lines.append("return")
    return lines


def unrecognized(cmd):
    out(" " * (len(prompt()) + len(cmd) - len(cmd.lstrip())) + "^\n")
    out("Error: Unrecognized command found at '^' position.\n")


def handle(cmd):
    c = cmd.strip()
    v = state["views"]
    if c == "":
        return
    if c == "display version":
        show(["XT-2 Business Router, Software Version V300R001C10SPC200",
              "Serial Number: XT2A1B2C3D4",
              "Uptime is 0 weeks, 0 days, 1 hour, 5 minutes"])
    elif c == "display current-configuration":
        show(current_config())
    elif c == "display configuration candidate":
        show(state["candidate"] or ["Info: No pending configuration."])
    elif c == "screen-length 0 temporary" and not v:
        state["paging"] = False
        out("Info: The configuration takes effect on the current user terminal interface only.\n")
    elif c == "system-view" and not v:
        state["views"] = ["system"]
        out("Enter system view, return user view with return command.\n")
    elif c == "quit":
        if not v:
            sys.exit(0)
        v.pop()
    elif c == "return":
        state["views"] = []
    elif c == "save" and not v:
        out("Are you sure to save the configuration? [Y/N]:")
        ans = getline().strip().lower()
        if ans == "y":
            out("Info: Saving the configuration to the startup file. Please wait...\n")
            out("Info: Save the configuration successfully.\n")
        else:
            out("Info: The configuration was not saved.\n")
    elif c == "commit" and v:
        state["running"] += state["candidate"]
        state["candidate"] = []
        out("Info: Commit succeeded.\n")
    elif c == "abort" and v:
        state["candidate"] = []
        out("Info: The candidate configuration was discarded.\n")
    elif v and c.startswith("interface "):
        name = c.split(None, 1)[1]
        if not IFACE.match(name):
            out("Error: The interface does not exist.\n")
            return
        state["views"] = ["system", name]
        state["candidate"].append(c)
    elif v and c.startswith("ip pool "):
        state["views"] = ["system", "ip-pool-" + c.split()[2]]
        state["candidate"].append(c)
    elif v and c.startswith("acl number "):
        state["views"] = ["system", "acl-adv-" + c.split()[2]]
        state["candidate"].append(c)
    elif len(v) == 1 and c.startswith(SYSTEM_CMDS):
        state["candidate"].append(c)
    elif len(v) > 1 and c.startswith(VIEW_CMDS):
        state["candidate"].append(" " + c)
    else:
        unrecognized(cmd)


out("\nInfo: The max number of VTY users is 5, and the number\n"
    "      of current VTY users on line is 1.\n")
while True:
    out(prompt())
    handle(getline())
