"""One exception tree for Creditbook; every WHMCS-compatible message text lives here.

::

    CreditError                      business error, HTTP 200, ``result=error``
    ├── ValidationError              bad input (type, amount, date, description, fields)
    ├── NotFound                     client, admin or other record does not exist
    ├── Conflict                     the request contradicts stored state
    ├── RequestError                 malformed request (empty action, body too large, ...)
    └── AccessDenied                 HTTP 403: authentication and access control
    StoreError                       the database failed (not the caller's fault)

Each subclass carries ``message`` (the exact wire text) and ``status`` (the HTTP status).
Transports translate ``CreditError`` in exactly one place each.
"""

from __future__ import annotations


class CreditError(Exception):
    """Base of every error Creditbook reports to a caller."""

    message = "Error"
    status = 200
    #: True when the error is the recorded outcome of an earlier request with the same
    #: idempotency key.
    replayed = False

    def __init__(self, message: str | None = None) -> None:
        if message is not None:
            self.message = message
        super().__init__(self.message)


class ValidationError(CreditError):
    """The input is malformed; nothing was changed."""


class NotFound(CreditError):
    """A referenced record does not exist."""


class Conflict(CreditError):
    """The request is well formed but contradicts stored state."""


class RequestError(CreditError):
    """The request itself is unusable (HTTP status other than 200)."""


class AccessDenied(CreditError):
    """Authentication or access control refused the request (HTTP 403)."""

    status = 403


class StoreError(Exception):
    """The database failed; the operation was not applied.

    ``unique`` is true when a unique constraint refused the write (a race the caller lost).
    Callers are told only ``public_message``; the details go to the log.
    """

    public_message = "Database unavailable, try again"

    def __init__(self, message: str, *, unique: bool = False) -> None:
        super().__init__(message)
        self.unique = unique


# --- request level -----------------------------------------------------------------------------


class EmptyAction(RequestError):
    """No action was named."""

    message = "Empty action request"
    status = 400


class CommandNotFound(RequestError):
    """The action is not one Creditbook implements."""

    message = "Command Not Found"


class BodyTooLarge(RequestError):
    """The request body exceeds the limit."""

    message = "Request body too large: the limit is 1 MiB"
    status = 413


class TooManyParameters(RequestError):
    """More parameters than PHP's ``max_input_vars`` default allows."""

    message = "Too many parameters: the limit is 1000"
    status = 400


class NestingTooDeep(RequestError):
    """Array parameters nested deeper than PHP's ``max_input_nesting_level`` default."""

    message = "Parameters nested too deeply: the limit is 64 levels"
    status = 400


class UnsupportedResponseType(RequestError):
    """``responsetype`` is not json, xml or nvp."""

    def __init__(self, value: str) -> None:
        super().__init__(f'Unsupported response type "{value}": use json, xml or nvp')


class NvpNotSupported(RequestError):
    """List actions cannot be rendered as NVP."""

    message = "This action supports only the json and xml response types"


# --- authentication and access control (HTTP 403) ----------------------------------------------


class InvalidCredentials(AccessDenied):
    """An identifier without its secret, or an unknown identifier."""

    message = "Invalid or missing credentials"


class AuthenticationFailed(AccessDenied):
    """Wrong secret, unknown admin, wrong password, or nothing supplied."""

    message = "Authentication Failed"


class AdminDisabled(AccessDenied):
    """The admin behind the credential is disabled."""

    message = "Administrator Account Disabled"


class InvalidPermissions(AccessDenied):
    """The credential's roles do not grant the action."""

    def __init__(self, action: str) -> None:
        super().__init__(f'Invalid Permissions: API action "{action}" is not allowed')


class InvalidIP(AccessDenied):
    """The client address is not on the allow-list."""

    def __init__(self, address: str) -> None:
        super().__init__(f"Invalid IP {address}")


class InvalidAccessKey(AccessDenied):
    """A wrong ``accesskey`` was sent."""

    message = "Invalid Access Key"


class LoginBusy(AccessDenied):
    """Too many admin logins are being verified at once; the client should retry."""

    message = "Too many logins in progress, try again"
    status = 503


class IPBanned(AccessDenied):
    """The address is temporarily banned after repeated authentication failures."""

    message = "IP Banned"

    def __init__(self, until: float = 0.0) -> None:
        super().__init__()
        #: When the ban ends (epoch seconds; 0.0 when not known here).
        self.until = until


class LoginBanned(AccessDenied):
    """A username is temporarily banned after repeated failed logins."""

    message = "Too many failed logins for this username, try again later"

    def __init__(self, until: float = 0.0) -> None:
        super().__init__()
        #: When the ban ends (epoch seconds).
        self.until = until


# --- AddCredit (spec section 6, in checking order) ---------------------------------------------


class InvalidType(ValidationError):
    message = "Type can only be add or remove"


class NoAmount(ValidationError):
    message = "No Amount Provided"


class InvalidAmount(ValidationError):
    message = "Amount must be in decimal format: ### or ###.##"


class InvalidDate(ValidationError):
    message = "Date Format is not Valid"


class NoDescription(ValidationError):
    message = "No Description Provided"


class DescriptionTooLong(ValidationError):
    message = "Description is too long"


class InvalidText(ValidationError):
    """Text holding characters that cannot be stored and rendered faithfully (e.g. NUL)."""

    def __init__(self, field: str) -> None:
        super().__init__(f"The {field} contains characters that are not allowed")


class ClientIdNotFound(NotFound):
    message = "Client ID Not Found"


class AdminIdNotFound(NotFound):
    message = "Admin ID Not Found"


class InsufficientCredit(Conflict):
    message = "Amount exceeds customer credit balance"


class BackdatedOverdraw(InsufficientCredit):
    """A removal dated before later entries that would leave some later day below zero."""

    def __init__(self, date: str, day: str, balance: str) -> None:
        super().__init__(
            f"{InsufficientCredit.message} on {day}: a removal dated {date} must leave the "
            f"balance at zero or more at the end of every day from {date} on, and the "
            f"balance at the end of {day} is {balance}"
        )


class BalanceLimitExceeded(Conflict):
    message = "Amount exceeds the maximum credit balance"


# --- clients and admins (spec section 7) -------------------------------------------------------


class ClientNotFound(NotFound):
    message = "Client Not Found"


class ClientLookupRequired(ValidationError):
    message = "Either clientid Or email Is Required"


class NoFirstName(ValidationError):
    message = "You did not enter your first name"


class NoLastName(ValidationError):
    message = "You did not enter your last name"


class NoEmail(ValidationError):
    message = "You did not enter your email address"


class InvalidEmail(ValidationError):
    message = "The email address you entered was not valid"


class DuplicateEmail(Conflict):
    message = "A user already exists with that email address"


class CurrencyNotAllowed(ValidationError):
    """A currency the configured list does not allow."""

    def __init__(self, code: str, allowed: str) -> None:
        shown = code if len(code) <= 10 else code[:10] + "..."
        super().__init__(f"Unknown currency {shown}: use one of {allowed}")


class CurrencyLocked(Conflict):
    message = "The currency can change only while the client has no credit entries"


class ClientClosed(Conflict):
    message = "Client is closed"


class FieldTooLong(ValidationError):
    def __init__(self, field: str) -> None:
        super().__init__(f"The {field} is too long")


class AdminNotFound(NotFound):
    message = "Administrator Not Found"


class DuplicateAdmin(Conflict):
    message = "An administrator with that username already exists"


class InvalidUsername(ValidationError):
    message = "Usernames are 1 to 64 letters, digits, dots, dashes, underscores or @"


class CredentialNotFound(NotFound):
    message = "Credential Not Found"


class RoleNotFound(NotFound):
    def __init__(self, name: str) -> None:
        super().__init__(f"Role Not Found: {name}")


class InvalidSetting(ValidationError):
    """A configuration value is unknown or malformed."""


class IdempotencyKeyReused(Conflict):
    """The idempotency key was already used for a request with other parameters."""

    message = "Idempotency key already used with different parameters"


class EndpointNotFound(NotFound):
    def __init__(self, endpoint_id: int) -> None:
        super().__init__(f"Webhook endpoint {endpoint_id} not found")


class DeliveryNotFound(NotFound):
    def __init__(self, delivery_id: int) -> None:
        super().__init__(f"Webhook delivery {delivery_id} not found")


class InvalidWebhook(ValidationError):
    """A webhook endpoint's URL or event list is unusable."""


class ImportCollision(Conflict):
    """The store holds rows with the source's ids that the source did not put there."""


# --- the web console -----------------------------------------------------------------------


class EntryNotFound(NotFound):
    message = "Credit entry not found"


class AlreadyReversed(Conflict):
    message = "This entry has already been reversed"


class BulkRowDone(Conflict):
    message = "Already applied from this file"


class LastOwner(Conflict):
    message = "Creditbook needs at least one enabled owner: make another admin an owner first"


class InvalidAccessLevel(ValidationError):
    message = "The access level must be viewer, manager or owner"


# --- credit grants -----------------------------------------------------------------------------


class UnknownCategory(ValidationError):
    message = "Unknown credit category"


class InvalidExpiry(ValidationError):
    message = "Expiry date must be a YYYY-MM-DD date after the entry's date"


class NothingToTakeBack(Conflict):
    message = "Nothing remains of this credit to take back"


class NotReversible(Conflict):
    message = "Expiry entries and reversals of removals cannot be reversed: add or remove credit"


class InvalidCategory(ValidationError):
    message = "Category names are 1 to 32 lower-case letters, digits, dashes or underscores"


class PaidExpiryUnconfirmed(ValidationError):
    message = "Paid credit is the client's money: confirm to make it expire"
