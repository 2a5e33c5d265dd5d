"""Privacy: redaction rules, retention, erasure that reaches every copy, encryption at rest.

See docs/privacy.md for what each option protects against and what it does not.
"""

from eventstore.privacy.config import (
    PrivacySettings,
    RedactionRule,
    RedactionSettings,
    RetentionSettings,
    parse_privacy,
    parse_retention,
)
from eventstore.privacy.redaction import Redactor, keyed_hash

__all__ = [
    "PrivacySettings",
    "RedactionRule",
    "RedactionSettings",
    "Redactor",
    "RetentionSettings",
    "keyed_hash",
    "parse_privacy",
    "parse_retention",
]
