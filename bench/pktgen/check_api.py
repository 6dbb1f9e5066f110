"""Checks what bench/pktgen/sluice.lua asks of Pktgen against bench/pktgen/api.txt: every
`pktgen.NAME(args)` line of a dry run (name, argument count, restricted arguments) and every
"sluice.lua: at the Pktgen prompt: CMD" line (against the CLI command shapes), for every
Pktgen version listed there.
usage: python3 check_api.py DRY_RUN_OUTPUT...     check dry-run outputs
       python3 check_api.py --cli 'CMD'...         check commands as typed at the prompt"""

import os
import re
import sys

API = os.path.join(os.path.dirname(os.path.abspath(__file__)), "api.txt")


def load(path=API):
    lua, cli = {}, {}
    for n, line in enumerate(open(path), 1):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        kind, version, rest = line.split(None, 2)
        if kind == "lua":
            f = rest.split()
            restrict = {}
            for r in f[2:]:
                pos, choices = r.split("=", 1)
                restrict[int(pos)] = set(choices.split("|"))
            lua.setdefault(version, {})[f[0]] = (int(f[1]), restrict)
        elif kind == "cli":
            cli.setdefault(version, []).append(rest.split())
        else:
            raise SystemExit("%s:%d: unknown kind %r" % (path, n, kind))
    versions = sorted(set(lua) | set(cli))
    return versions, lua, cli


NUM = re.compile(r"^(0x[0-9a-fA-F]+|[0-9]+)$")
TOKEN = {
    "%P": re.compile(r"^(all|[0-9]+(-[0-9]+)?(,[0-9]+(-[0-9]+)?)*)$"),
    "%d": NUM, "%D": NUM, "%b": NUM,
    "%h": re.compile(r"^(0x)?[0-9a-fA-F]+$"),
    "%4": re.compile(r"^([0-9]{1,3}\.){3}[0-9]{1,3}(/[0-9]{1,2})?$"),
    "%6": re.compile(r"^[0-9a-fA-F:]+(/[0-9]{1,3})?$"),
    "%m": re.compile(r"^([0-9a-fA-F]{2}:){5}[0-9a-fA-F]{2}$|^([0-9a-fA-F]{4}:){2}[0-9a-fA-F]{4}$"),
    "%s": re.compile(r"^\S+$"),
}


def word_ok(shape, word):
    if shape.startswith("%|"):
        return word in shape[2:].split("|")
    if shape in TOKEN:
        return bool(TOKEN[shape].match(word))
    return shape == word


def cli_ok(shapes, cmd):
    words = cmd.split()
    for shape in shapes:
        if shape and shape[-1] == "%l" and len(words) >= len(shape) - 1:
            if all(word_ok(s, w) for s, w in zip(shape[:-1], words)):
                return True
        if len(shape) == len(words) and all(word_ok(s, w) for s, w in zip(shape, words)):
            return True
    return False


CALL = re.compile(r"^pktgen\.([A-Za-z_][A-Za-z0-9_.]*)\((.*)\)$")
ARG = re.compile(r'\s*("(?:[^"\\]|\\.)*"|\{[^}]*\}|[^,]+)\s*(?:,|$)')


def args_of(text):
    out = []
    pos = 0
    while pos < len(text):
        m = ARG.match(text, pos)
        if not m or m.end() == pos:
            raise ValueError("cannot split arguments: " + text)
        a = m.group(1)
        out.append(a[1:-1] if a.startswith('"') else a)
        pos = m.end()
    return out


def check_lines(lines, versions, lua, cli):
    errors, calls, cmds = [], 0, 0
    for line in lines:
        line = line.rstrip("\n")
        m = CALL.match(line)
        if m:
            calls += 1
            name, args = m.group(1), args_of(m.group(2))
            for v in versions:
                if name not in lua.get(v, {}):
                    errors.append("pktgen.%s is not a Lua call api.txt lists for pktgen %s (list it only "
                                  "once that version's app/lpktgenlib.c has it): %s" % (name, v, line))
                    continue
                nargs, restrict = lua[v][name]
                if len(args) != nargs:
                    errors.append("pktgen %s: pktgen.%s takes %d arguments, got %d: %s"
                                  % (v, name, nargs, len(args), line))
                for pos, choices in restrict.items():
                    if pos <= len(args) and args[pos - 1] not in choices:
                        errors.append("pktgen %s: pktgen.%s argument %d must be one of %s: %s"
                                      % (v, name, pos, "|".join(sorted(choices)), line))
            continue
        m = re.match(r"^sluice\.lua: at the Pktgen prompt: (.*)$", line)
        if m:
            cmds += 1
            for v in versions:
                if not cli_ok(cli.get(v, []), m.group(1)):
                    errors.append("pktgen %s rejects the command <%s>" % (v, m.group(1)))
    return errors, calls, cmds


def main(argv):
    versions, lua, cli = load()
    if argv[:1] == ["--cli"]:
        lines = ["sluice.lua: at the Pktgen prompt: " + c for c in argv[1:]]
    else:
        lines = [l for path in argv for l in open(path)]
    errors, calls, cmds = check_lines(lines, versions, lua, cli)
    for e in errors:
        print("check_api: " + e, file=sys.stderr)
    if errors:
        return 1
    print("check_api: %d Lua calls and %d prompt commands accepted by pktgen %s"
          % (calls, cmds, ", ".join(versions)))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
