"""pyroute2's netlink grammar without pyroute2's whole API: the one place the agent imports pyroute2.

`import pyroute2` runs the package's `__init__`, which imports every public class (NDB, IPDB,
nftables, generic netlink families, ...) for code the agent never calls. The agent needs only the
message classes (`ifaddrmsg`, `nlmsgerr`) and constants, which live in `pyroute2.netlink` and do not
need that `__init__`. Measured with pyroute2 0.9.7, VmRSS of a settled agent in a lab pair at
keepalive 100 ms: 37.3 MB with `from pyroute2 import AsyncIPRoute`, 27.3 MB with this module.

So, when nothing has imported pyroute2 yet, a stand-in package module is registered whose `__path__`
is the real package directory (submodules import from there as usual) and whose package body runs only
if someone later asks the package itself for a name (`from pyroute2 import IPRoute` in a test or a
debugging session still works, it just pays the full price then). When pyroute2 is already imported,
nothing is changed.
"""

from __future__ import annotations

import importlib.util
import sys
import types


def _install_deferred_package() -> None:
    if "pyroute2" in sys.modules:
        return
    spec = importlib.util.find_spec("pyroute2")
    if spec is None or spec.loader is None or spec.submodule_search_locations is None:
        return  # not a regular package: let the ordinary import below report what is wrong
    package = types.ModuleType("pyroute2")
    package.__spec__ = spec
    package.__path__ = list(spec.submodule_search_locations)
    package.__file__ = spec.origin
    loader = spec.loader

    def load_package_body(name: str) -> object:
        """Module `__getattr__`: runs only for names the stand-in lacks, i.e. the package's public API."""
        del package.__dict__["__getattr__"]
        loader.exec_module(package)
        return getattr(package, name)

    package.__getattr__ = load_package_body  # type: ignore[method-assign]
    sys.modules["pyroute2"] = package


_install_deferred_package()

# pylint: disable=wrong-import-position
from pyroute2.netlink import (  # noqa: E402
    NETLINK_EXT_ACK,
    NLM_F_ACK,
    NLM_F_ACK_TLVS,
    NLM_F_CREATE,
    NLM_F_DUMP,
    NLM_F_DUMP_INTR,
    NLM_F_EXCL,
    NLM_F_MULTI,
    NLM_F_REQUEST,
    NLMSG_DONE,
    NLMSG_ERROR,
    NLMSG_OVERRUN,
    SOL_NETLINK,
    nlmsg,
    nlmsgerr,
)
from pyroute2.netlink.rtnl import RTM_DELADDR, RTM_GETADDR, RTM_GETLINK, RTM_NEWADDR, RTM_NEWLINK  # noqa: E402
from pyroute2.netlink.rtnl.ifaddrmsg import ifaddrmsg  # noqa: E402


class linkmsg(nlmsg):  # pylint: disable=invalid-name  # pyroute2's naming of message classes
    """struct ifinfomsg without its attributes: the link flags are all health tracking reads. pyroute2's
    `ifinfmsg` would import every link-kind plugin (megabytes) for attributes nobody here reads."""

    fields = (("family", "B"), ("__align", "x"), ("ifi_type", "H"), ("index", "i"), ("flags", "I"), ("change", "I"))
    nla_map = ()


__all__ = [
    "NETLINK_EXT_ACK", "NLM_F_ACK", "NLM_F_ACK_TLVS", "NLM_F_CREATE", "NLM_F_DUMP", "NLM_F_DUMP_INTR", "NLM_F_EXCL", "NLM_F_MULTI",
    "NLM_F_REQUEST", "NLMSG_DONE", "NLMSG_ERROR", "NLMSG_OVERRUN", "RTM_DELADDR", "RTM_GETADDR", "RTM_NEWADDR",
    "SOL_NETLINK", "ifaddrmsg", "nlmsg", "nlmsgerr", "RTM_GETLINK", "RTM_NEWLINK", "linkmsg",
]
