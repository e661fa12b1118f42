"""hbvip.config: the one reader of ha.cf, haresources, authkeys (and hbvip.cf).

Every other part of hbvip gets its configuration from `load_config()` as frozen dataclasses;
every problem comes back as a `Problem` that names file and line.
"""

from __future__ import annotations

from hbvip.config.authkeys import METHODS, AuthKey, AuthKeys, parse_authkeys
from hbvip.config.extensions import Extensions, parse_extensions
from hbvip.config.hacf import HaCf, Medium, Timers, parse_hacf
from hbvip.config.haresources import NATIVE_RESOURCES, Resource, ResourceGroup, VipSpec, parse_haresources
from hbvip.config.loader import Config, config_digest, load_config
from hbvip.config.problems import ConfigError, Problem, errors, format_problems
from hbvip.config.scripts import resolve_script
from hbvip.config.values import parse_time

__all__ = [
    "METHODS", "NATIVE_RESOURCES", "AuthKey", "AuthKeys", "Config", "ConfigError", "Extensions", "HaCf",
    "Medium", "Problem", "Resource", "ResourceGroup", "Timers", "VipSpec", "config_digest", "errors",
    "format_problems", "load_config", "parse_authkeys", "parse_extensions", "parse_haresources",
    "parse_hacf", "parse_time", "resolve_script",
]
