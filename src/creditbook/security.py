"""Secrets and passwords: generation, hashing and constant-time verification (stdlib only).

API secrets are long random strings, so a fast SHA-256 digest is enough and keeps the request path
fast. Admin passwords are stored as scrypt of their MD5 form, so that both the plain password (CLI)
and the legacy MD5 form (WHMCS API) can be verified; successful slow verifications are cached
in memory keyed by a digest of what was supplied, never by the password itself.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
import threading
from concurrent.futures import Future, ThreadPoolExecutor

_SCRYPT_N, _SCRYPT_R, _SCRYPT_P = 2**14, 8, 1


def _token(size: int) -> str:
    # Never starting with "-": a command line would read "--secret -x..." as another option.
    while True:
        token = secrets.token_urlsafe(size)
        if not token.startswith("-"):
            return token


def new_identifier() -> str:
    """Return a new public credential identifier."""
    return _token(24)


def new_secret() -> str:
    """Return a new high-entropy API secret."""
    return _token(32)


def hash_secret(secret: str) -> str:
    """Return the stored form of an API secret."""
    return hashlib.sha256(secret.encode("utf-8", "surrogatepass")).hexdigest()


def verify_secret(secret: str, stored: str) -> bool:
    """Check an API secret against its stored form in constant time."""
    return hmac.compare_digest(hash_secret(secret), stored)


def md5_hex(password: str) -> str:
    """Return the lower-case hex MD5 of a password (the WHMCS legacy login form)."""
    return hashlib.md5(password.encode("utf-8", "surrogatepass")).hexdigest()  # noqa: S324


def _scrypt(md5_form: str, salt: bytes) -> bytes:
    return hashlib.scrypt(
        md5_form.encode("ascii", "replace"),
        salt=salt,
        n=_SCRYPT_N,
        r=_SCRYPT_R,
        p=_SCRYPT_P,
        maxmem=64 * 1024 * 1024,
        dklen=32,
    )


def hash_password(password: str) -> str:
    """Return the stored form of an admin password: scrypt of its MD5 form."""
    salt = secrets.token_bytes(16)
    digest = _scrypt(md5_hex(password), salt)
    b64 = base64.b64encode
    return f"scrypt${_SCRYPT_N}${b64(salt).decode()}${b64(digest).decode()}"


_cache: dict[tuple[str, str], bool] = {}
_cache_lock = threading.Lock()
_CACHE_MAX = 4096
#: Slow verifications waiting or running per process; beyond it a login is refused at once, so
#: a flood of wrong passwords costs a bounded amount of CPU and memory.
MAX_PENDING = 64
_pending = 0
_executor: ThreadPoolExecutor | None = None
_dummy: list[str] = []


class Busy(Exception):
    """Too many slow password verifications are already queued."""


def _cache_key(md5_form: str, stored: str) -> tuple[str, str]:
    return (stored, hashlib.sha256(md5_form.lower().encode("utf-8", "replace")).hexdigest())


def dummy_hash() -> str:
    """A stored-form hash no password matches, verified for unknown usernames (same cost)."""
    if not _dummy:
        _dummy.append(hash_password(secrets.token_urlsafe(32)))
    return _dummy[0]


def is_verified(md5_form: str, stored: str) -> bool:
    """Tell whether this password was already verified right (no slow hash needed)."""
    return _cache.get(_cache_key(md5_form, stored), False)


def verify_later(md5_form: str, stored: str) -> Future[bool]:
    """Verify a password on a worker thread (scrypt releases the GIL); raise ``Busy`` if full."""
    global _executor, _pending
    with _cache_lock:
        if _pending >= MAX_PENDING:
            raise Busy()
        _pending += 1
        if _executor is None:
            _executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="creditbook-hash")
    future = _executor.submit(verify_md5_password, md5_form, stored)
    future.add_done_callback(_finished)
    return future


def _finished(_: Future[bool]) -> None:
    global _pending
    with _cache_lock:
        _pending -= 1


def verify_md5_password(md5_form: str, stored: str) -> bool:
    """Check the MD5 form of a password against its stored scrypt hash (cached when right)."""
    key = _cache_key(md5_form, stored)
    if _cache.get(key):
        return True
    try:
        scheme, n, salt_b64, digest_b64 = stored.split("$")
        if scheme != "scrypt" or int(n) != _SCRYPT_N:
            return False
        salt, expected = base64.b64decode(salt_b64), base64.b64decode(digest_b64)
    except ValueError:
        return False
    ok = hmac.compare_digest(_scrypt(md5_form.lower(), salt), expected)
    if ok:
        with _cache_lock:
            if len(_cache) >= _CACHE_MAX:
                _cache.clear()
            _cache[key] = True
    return ok


def verify_password(password: str, stored: str) -> bool:
    """Check a plain password against its stored hash."""
    return verify_md5_password(md5_hex(password), stored)
