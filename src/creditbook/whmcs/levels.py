"""Which API actions each console access level may call: a level holds on every transport.

A viewer reads; a manager also changes credit and clients; an owner may do what a manager may
(API access itself, credentials, roles and the allow-list, changes only in the console and the
CLI). A credential's roles can narrow what its admin's level allows, never widen it.
"""

from __future__ import annotations

from ..admins import ACCESS_LEVELS

#: The lowest access level that may call each action (normalised names).
LEVEL_OF_ACTION = {
    "getcredits": "viewer",
    "getclientsdetails": "viewer",
    "getclients": "viewer",
    "getadmindetails": "viewer",
    "addcredit": "manager",
    "addclient": "manager",
    "updateclient": "manager",
    "closeclient": "manager",
}


def actions_for(access: str) -> frozenset[str]:
    """The actions an access level may call (an unknown level: reading only)."""
    rank = ACCESS_LEVELS.index(access) if access in ACCESS_LEVELS else 0
    return frozenset(
        action for action, level in LEVEL_OF_ACTION.items() if ACCESS_LEVELS.index(level) <= rank
    )
