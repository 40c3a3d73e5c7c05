"""LDAP result codes by their names: RFC 4511 appendix A, and the later RFCs' (LCUP, cancel,
assertion, authorization, e-sync) that a directory may send. Pure data."""

from __future__ import annotations

from typing import Final

RESULT_NAMES: Final = {
    0: "success",
    1: "operationsError",
    2: "protocolError",
    3: "timeLimitExceeded",
    4: "sizeLimitExceeded",
    5: "compareFalse",
    6: "compareTrue",
    7: "authMethodNotSupported",
    8: "strongerAuthRequired",
    9: "reserved",
    10: "referral",
    11: "adminLimitExceeded",
    12: "unavailableCriticalExtension",
    13: "confidentialityRequired",
    14: "saslBindInProgress",
    16: "noSuchAttribute",
    17: "undefinedAttributeType",
    18: "inappropriateMatching",
    19: "constraintViolation",
    20: "attributeOrValueExists",
    21: "invalidAttributeSyntax",
    32: "noSuchObject",
    33: "aliasProblem",
    34: "invalidDNSyntax",
    36: "aliasDereferencingProblem",
    48: "inappropriateAuthentication",
    49: "invalidCredentials",
    50: "insufficientAccessRights",
    51: "busy",
    52: "unavailable",
    53: "unwillingToPerform",
    54: "loopDetected",
    64: "namingViolation",
    65: "objectClassViolation",
    66: "notAllowedOnNonLeaf",
    67: "notAllowedOnRDN",
    68: "entryAlreadyExists",
    69: "objectClassModsProhibited",
    71: "affectMultipleDSAs",
    80: "other",
    113: "lcupResourcesExhausted",
    114: "lcupSecurityViolation",
    115: "lcupInvalidData",
    116: "lcupUnsupportedScheme",
    117: "lcupReloadRequired",
    118: "canceled",
    119: "noSuchOperation",
    120: "tooLate",
    121: "cannotCancel",
    122: "assertionFailed",
    123: "authorizationDenied",
    4096: "e-syncRefreshRequired",
}


def result_name(code: int) -> str:
    """A result code by its RFC name ("unavailableCriticalExtension (result code 12)")."""
    name = RESULT_NAMES.get(code)
    return f"{name} (result code {code})" if name else f"result code {code}"
