"""The WHMCS wire protocol: parameters, authentication, access control, actions, rendering."""

from .access import SETTINGS, AccessPolicy
from .actions import ACTION_NAMES, ACTIONS
from .api import Api, Pending, Reply

__all__ = ["ACTIONS", "ACTION_NAMES", "SETTINGS", "AccessPolicy", "Api", "Pending", "Reply"]
