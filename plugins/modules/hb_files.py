#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: hbvip team
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""hb_files: documentation of the action plugin of the same name (plugins/action/hb_files.py does the work)."""

from __future__ import annotations

DOCUMENTATION = r"""
---
module: hb_files
short_description: Write a set of small files in one round trip, validated together
version_added: 0.1.0
description:
  - Compares each file with the managed node's (content, mode, owner, group) and writes the ones that
    differ, with one POSIX shell run on the node; the contents go over the connection's standard input,
    never on a command line.
  - The new contents are staged beside their targets, checked together by O(validate), and only then
    renamed into place; when the check fails, no file of the set is written.
  - The role C(hbvip.heartbeat.heartbeat_vip) writes the pair's config files with it, so a node never
    holds a new C(ha.cf) beside an old C(haresources), and a changed set costs one round trip instead of
    a stat, a transfer and a copy per file (M(ansible.builtin.copy)).
  - Runs as an action plugin; the managed node needs C(sh), C(base64), C(sha1sum), C(stat), C(mktemp),
    C(chown), C(chmod) and C(mv) (coreutils or busybox), no Python.
author:
  - hbvip team (@hbvip)
extends_documentation_fragment:
  - ansible.builtin.action_common_attributes
attributes:
  check_mode:
    support: full
    details:
      - Reports what it would write and shows it with C(--diff); writes nothing and does not run
        O(validate).
  diff_mode:
    support: full
    details:
      - The old and new content of each file it changes; for a file with O(files[].secret) only that it
        changed.
  platform:
    platforms: posix
requirements:
  - A connection that can pass data on standard input (ssh, local; as module pipelining does).
options:
  files:
    description:
      - The files of the set.
    type: list
    elements: dict
    required: true
    suboptions:
      name:
        description: A label for the file (the caller's name for it); not used otherwise.
        type: str
      path:
        description: Absolute path of the file on the managed node.
        type: path
        required: true
      content:
        description: The whole content of the file.
        type: str
        required: true
      mode:
        description: Its permissions, as an octal string such as V('0644').
        type: raw
        required: true
      owner:
        description: Its owner.
        type: str
        default: root
      group:
        description: Its group.
        type: str
        default: root
      secret:
        description:
          - The content is a secret (C(authkeys)) and never shown, in a diff or anywhere else. Set
            C(no_log) on the task as well, since its arguments hold the content.
        type: bool
        default: false
      validate_flag:
        description:
          - When this file's content changes, O(validate) gets this flag followed by the staged file's path.
        type: str
  validate:
    description:
      - A shell command run once for the set, before anything is renamed into place, with
        O(files[].validate_flag) and the staged path of each changed file that has one appended. A
        non-zero exit leaves every file as it was and fails the task with the command's output.
      - Not run when no file with a O(files[].validate_flag) changes, nor in check mode.
    type: str
  directories:
    description:
      - Directories to create first (mode V(0755), owner and group C(root)) where they are missing.
    type: list
    elements: path
    default: []
seealso:
  - module: ansible.builtin.copy
"""

EXAMPLES = r"""
- name: Write ha.cf and haresources as one set, checked by the agent's parser
  hbvip.heartbeat.hb_files:
    directories: [/etc/ha.d]
    files:
      - path: /etc/ha.d/ha.cf
        content: "{{ lookup('ansible.builtin.template', 'ha.cf.j2') }}"
        mode: "0644"
        validate_flag: --ha-cf
      - path: /etc/ha.d/haresources
        content: "server1 IPaddr::10.99.0.100/24/eth0\n"
        mode: "0644"
        validate_flag: --haresources
    validate: /opt/hbvip/venv/bin/hbvip check-config --no-lint --file-only
"""

RETURN = r"""
files:
  description: What was found for each file, by path (and in a real run done).
  type: dict
  returned: always
  sample: {"/etc/ha.d/ha.cf": "content", "/etc/ha.d/authkeys": "same"}
  contains:
    state:
      description:
        - V(same) (nothing to do), V(new) (created), V(content) (replaced), V(attrs) (only mode, owner or
          group set).
      type: str
directories_created:
  description: The directories of O(directories) that were missing.
  type: list
  elements: str
  returned: always
  sample: ["/etc/ha.d"]
rc:
  description: The exit code of O(validate) when it refused the set.
  type: int
  returned: failed
"""
