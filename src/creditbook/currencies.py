"""The currencies a client may hold: ISO 4217's by default, or a list the operator sets.

The shared setting ``currencies`` is a comma list of codes, where ``ISO4217`` stands for every
active ISO 4217 code (the default); ``creditbook currency add|remove CODE`` edits it.
"""

from __future__ import annotations

import re

ISO = "ISO4217"
#: The active ISO 4217 alphabetic codes (funds and metals included).
ISO_4217 = frozenset(
    """
    AED AFN ALL AMD ANG AOA ARS AUD AWG AZN BAM BBD BDT BGN BHD BIF BMD BND BOB BOV BRL BSD BTN
    BWP BYN BZD CAD CDF CHE CHF CHW CLF CLP CNY COP COU CRC CUP CVE CZK DJF DKK DOP DZD EGP ERN
    ETB EUR FJD FKP GBP GEL GHS GIP GMD GNF GTQ GYD HKD HNL HTG HUF IDR ILS INR IQD IRR ISK JMD
    JOD JPY KES KGS KHR KMF KPW KRW KWD KYD KZT LAK LBP LKR LRD LSL LYD MAD MDL MGA MKD MMK MNT
    MOP MRU MUR MVR MWK MXN MXV MYR MZN NAD NGN NIO NOK NPR NZD OMR PAB PEN PGK PHP PKR PLN PYG
    QAR RON RSD RUB RWF SAR SBD SCR SDG SEK SGD SHP SLE SOS SRD SSP STN SVC SYP SZL THB TJS TMT
    TND TOP TRY TTD TWD TZS UAH UGX USD USN UYI UYU UYW UZS VED VES VND VUV WST XAF XAG XAU XBA
    XBB XBC XBD XCD XCG XDR XOF XPD XPF XPT XSU XTS XUA XXX YER ZAR ZMW ZWG ZWL
    """.split()
)
_CODE = re.compile(r"[A-Z]{3}|ISO4217")


def parse_list(value: str) -> list[str]:
    """The setting's codes, upper case, in order, without repeats; ``ValueError`` for a code
    that is not three letters (or ``ISO4217``)."""
    codes = list(dict.fromkeys(c.strip().upper() for c in value.split(",") if c.strip()))
    bad = [c for c in codes if not _CODE.fullmatch(c)]
    if bad or not codes:
        raise ValueError(f"Currency codes are three letters (or ISO4217 for all): {', '.join(bad)}")
    return codes


def allowed(value: str) -> frozenset[str]:
    """The codes a setting allows."""
    codes = set(parse_list(value or ISO))
    if ISO in codes:
        codes |= ISO_4217
        codes.discard(ISO)
    return frozenset(codes)


def describe(value: str) -> str:
    """The setting in words, for a refusal: the codes, or "the ISO 4217 codes and ..."."""
    codes = parse_list(value or ISO)
    extra = [c for c in codes if c != ISO]
    if ISO in codes:
        return "the ISO 4217 codes" + (f" and {', '.join(extra)}" if extra else "")
    return ", ".join(extra)
