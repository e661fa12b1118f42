# -*- coding: utf-8 -*-
# Copyright: hbvip contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""hbvip.heartbeat.hb_files: write a set of small files in one round trip, checked together.

Why not ansible.builtin.copy: copy costs a `stat` module run, a file transfer and a `copy` module run
per file (about 1.3 CPU-seconds on the host with its validate:), and it writes each file on its own, so
a node can be left with a new ha.cf beside an old haresources when a later file's validation fails. This
action compares, stages, validates and renames the whole set with one POSIX shell script sent over the
connection's stdin: the contents (secrets included) never appear in a command line, and a set that
fails validation leaves every file as it was.
"""
from __future__ import annotations

import base64
import hashlib
import shlex

from ansible.errors import AnsibleActionFail
from ansible.module_utils.common.arg_spec import ArgumentSpecValidator
from ansible.module_utils.common.text.converters import to_bytes, to_text
from ansible.plugins.action import ActionBase

__metaclass__ = type  # pylint: disable=invalid-name

_SPEC = {
    "files": {
        "type": "list", "elements": "dict", "required": True,
        "options": {
            "name": {"type": "str"},
            "path": {"type": "path", "required": True},
            "content": {"type": "str", "required": True, "no_log": False},
            "mode": {"type": "raw", "required": True},
            "owner": {"type": "str", "default": "root"},
            "group": {"type": "str", "default": "root"},
            "secret": {"type": "bool", "default": False},
            "validate_flag": {"type": "str"},
        },
    },
    "validate": {"type": "str"},
    "directories": {"type": "list", "elements": "path", "default": []},
}

#: What a diff shows of a secret file (authkeys): that it changed, never its content.
_SHOWN_SECRET = "(secret: content not shown)\n"


def _mode(value: object) -> str:
    """A mode as stat's %a prints it ('0600' and 0o600 both give '600')."""
    number = value if isinstance(value, int) else int(str(value), 8)
    if not 0 <= number <= 0o7777:
        raise AnsibleActionFail(f"mode {value!r} is not a file mode")
    return format(number, "o")


def script(files: list[dict], directories: list[str], validate: str | None, *, check: bool, diff: bool) -> str:
    """The shell script that compares (and outside check mode writes) the set; what it prints:

    D I              directory I was missing (created unless check)
    F I STATE        file I is `same`, `attrs` (mode or owner differ), `content` or `new`
    A I MODE OWNER GROUP  file I's current attributes, where only they differ
    B I BASE64       file I's current content (diff mode, non-secret files whose content differs)
    V RC BASE64      the validate command refused the staged set (exit code, its output); nothing written
    E TEXT           a step failed (nothing after it was written)
    """
    q = shlex.quote
    lines = ["set -u", "umask 077", "export LC_ALL=C",
             'fail() { printf "E %s\\n" "$1"; for t in $staged; do rm -f -- "$t"; done; exit 0; }', "staged="]
    for i, d in enumerate(directories):
        make = f"(umask 022; mkdir -p -- {q(d)}) && chmod 0755 -- {q(d)} && chown root:root -- {q(d)} || fail {q('mkdir ' + d)}; "
        lines.append(f"if [ ! -d {q(d)} ]; then echo 'D {i}'; {'' if check else make}fi")
    for i, f in enumerate(files):
        path, want = q(f["path"]), f"{_mode(f['mode'])} {f['owner']} {f['group']}"
        digest = hashlib.sha1(to_bytes(f["content"])).hexdigest()
        lines += [
            f"if [ -f {path} ] && [ ! -L {path} ]; then",
            f"  s=$(sha1sum < {path}) && s=${{s%% *}}; a=$(stat -c '%a %U %G' -- {path})",
            f"  if [ \"$s\" != {digest} ]; then c{i}=content; elif [ \"$a\" != {q(want)} ]; then c{i}=attrs;"
            f" else c{i}=same; fi",
            f"else c{i}=new; fi",
            f"echo \"F {i} $c{i}\"",
            f"[ \"$c{i}\" != attrs ] || echo \"A {i} $a\"",
        ]
        if diff and not f["secret"]:
            lines.append(f"[ \"$c{i}\" != content ] || echo \"B {i} $(base64 -w0 < {path})\"")
    if check:
        return "\n".join(lines) + "\n"
    for i, f in enumerate(files):
        path, parent = f["path"], f["path"].rsplit("/", 1)[0] or "/"
        body = to_text(base64.b64encode(to_bytes(f["content"])))
        lines += [
            f"case $c{i} in content|new)",
            f"  t{i}=$(mktemp {q(parent + '/.' + path.rsplit('/', 1)[1] + '.hbvip.XXXXXX')}) || fail {q('mktemp ' + path)}",
            f"  staged=\"$staged $t{i}\"",
            f"  printf '%s' '{body}' | base64 -d > \"$t{i}\" || fail {q('write ' + path)}",
            f"  chown {q(f['owner'] + ':' + f['group'])} \"$t{i}\" && chmod {_mode(f['mode'])} \"$t{i}\""
            f" || fail {q('chown/chmod ' + path)} ;;",
            "esac",
        ]
    checked = [(i, f["validate_flag"]) for i, f in enumerate(files) if f.get("validate_flag")]
    if validate and checked:
        args = " ".join(f"${{t{i}:+{q(flag)} \"$t{i}\"}}" for i, flag in checked)
        lines += [
            "if [ -n \"" + "".join(f"${{t{i}:-}}" for i, _flag in checked) + "\" ]; then",
            f"  out=$({validate} {args} 2>&1); rc=$?",
            "  if [ $rc -ne 0 ]; then",
            "    for t in $staged; do rm -f -- \"$t\"; done",
            "    echo \"V $rc $(printf '%s' \"$out\" | base64 -w0)\"; exit 0",
            "  fi",
            "fi",
        ]
    for i, f in enumerate(files):
        path = q(f["path"])
        lines += [
            f"case $c{i} in",
            f"  content|new) mv -f -- \"$t{i}\" {path} || fail {q('rename ' + f['path'])};;",
            f"  attrs) chown {q(f['owner'] + ':' + f['group'])} -- {path} && chmod {_mode(f['mode'])} -- {path}"
            f" || fail {q('chown/chmod ' + f['path'])};;",
            "esac",
            f"case $c{i} in content|new|attrs) ! command -v restorecon >/dev/null 2>&1 || restorecon -- {path};; esac",
        ]
    return "\n".join(lines) + "\n"


def parse(out: str) -> dict:
    """The script's report as {'dirs': [I], 'files': {I: STATE}, 'before': {I: text}, 'refused': ..., 'error': ...}."""
    report: dict = {"dirs": [], "files": {}, "before": {}, "attrs": {}, "refused": None, "error": None}
    for line in out.splitlines():
        kind, _sep, rest = line.partition(" ")
        if kind == "D":
            report["dirs"].append(int(rest))
        elif kind == "F":
            index, state = rest.split(" ", 1)
            report["files"][int(index)] = state
        elif kind == "A":
            index, _sep, attrs = rest.partition(" ")
            report["attrs"][int(index)] = attrs
        elif kind == "B":
            index, _sep, data = rest.partition(" ")
            report["before"][int(index)] = to_text(base64.b64decode(data), errors="surrogate_or_replace")
        elif kind == "V":
            rc, _sep, data = rest.partition(" ")
            report["refused"] = (int(rc), to_text(base64.b64decode(data), errors="surrogate_or_replace"))
        elif kind == "E":
            report["error"] = rest
    return report


class ActionModule(ActionBase):
    """Compare, stage, validate and rename a set of files with one remote shell run."""

    TRANSFERS_FILES = False
    _VALID_ARGS = frozenset(_SPEC)

    def run(self, tmp=None, task_vars=None):
        result = super().run(tmp, task_vars)
        del tmp  # the script needs no remote temp dir: it comes over stdin
        validated = ArgumentSpecValidator(_SPEC).validate(self._task.args)
        if validated.error_messages:
            raise AnsibleActionFail("; ".join(validated.error_messages))
        args = validated.validated_parameters
        files, dirs = args["files"], args["directories"]
        check, diff = bool(self._task.check_mode), bool(self._task.diff)
        text = script(files, dirs, args["validate"], check=check, diff=diff)
        run = self._low_level_execute_command("/bin/sh -s", in_data=to_bytes(text), sudoable=True)
        if run["rc"] != 0:
            raise AnsibleActionFail(f"the shell on the host failed (rc {run['rc']}): {run['stderr'].strip()}")
        report = parse(run["stdout"])
        states = {f["path"]: report["files"].get(i, "unknown") for i, f in enumerate(files)}
        result["files"] = states
        result["directories_created"] = [dirs[i] for i in report["dirs"]]
        if report["refused"] is not None:
            rc, output = report["refused"]
            return dict(result, failed=True, rc=rc, msg=f"{args['validate']} refused the new files, none was "
                        f"written: {output.strip()}")
        if report["error"] is not None:
            return dict(result, failed=True, msg=f"writing the files failed at: {report['error']}")
        result["changed"] = bool(report["dirs"]) or any(s != "same" for s in states.values())
        if diff:
            result["diff"] = [self._diff(i, f, states[f["path"]], report) for i, f in enumerate(files)
                              if states[f["path"]] != "same"]
        return result

    @staticmethod
    def _diff(index: int, spec: dict, state: str, report: dict) -> dict:
        """One file's entry of the task's diff: its content, its attributes, or for a secret only that it
        changed."""
        path = spec["path"]
        if state == "attrs":
            want = f"{_mode(spec['mode'])} {spec['owner']} {spec['group']}"
            return {"before_header": f"{path} (mode owner group)", "after_header": f"{path} (mode owner group)",
                    "before": report["attrs"].get(index, "") + "\n", "after": want + "\n"}
        if spec["secret"]:
            old, new = ("" if state == "new" else _SHOWN_SECRET), _SHOWN_SECRET.replace("not shown", "changed, not shown")
        else:
            old, new = report["before"].get(index, ""), spec["content"]
        return {"before_header": path, "after_header": path, "before": old, "after": new}
