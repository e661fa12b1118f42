"""The module side's copies of agent contracts agree with the agent.

`plugins/module_utils/_hbvip.py` runs on managed hosts where the agent's package may be another
version or absent, so it cannot import the agent; the few values it must share are checked here.
"""

from __future__ import annotations

import sys
from pathlib import Path

from ansible_collections.hbvip.heartbeat.plugins.module_utils import _hbvip

sys.path.insert(0, str(Path(__file__).resolve().parents[4] / "agent" / "src"))
from hbvip.cluster.groups import GroupState  # noqa: E402  pylint: disable=wrong-import-position


def test_the_modules_settled_states_are_the_agents_settled_group_states() -> None:
    # hb_vip waits until a group's state is in SETTLED; a state the agent adds (or renames) that the
    # module did not learn would make it wait for its whole timeout, or stop waiting too early.
    assert _hbvip.SETTLED == {s.value for s in GroupState if s.settled}
