"""How email addresses are compared: the one place that decides when two addresses are equal.

GitHub does not document how it compares addresses during license sync. We ignore letter
case and surrounding white space (mail systems treat addresses that way in practice) and
rewrite nothing else: dropping `+tags` or dots would merge people GitHub keeps apart and
make our seat count lower than GitHub's. Such near-misses are only reported (see
`duplicates.py`), using the looser keys below.
"""

from __future__ import annotations


def normalise_email(raw: str | None) -> str | None:
    """The form two addresses are compared in: stripped and case-folded; `None` if empty.

    >>> normalise_email("  Mona.Lisa@Example.COM ")
    'mona.lisa@example.com'
    >>> normalise_email("   ") is None
    True
    """
    if raw is None:
        return None
    normalised = raw.strip().casefold()
    return normalised or None


def split_address(normalised: str) -> tuple[str, str]:
    """Local part and domain of a normalised address (split at the last `@`).

    An address without `@` is all local part with an empty domain, so odd input (a SAML
    NameID that is a user name, say) is still handled rather than rejected.
    """
    local, at, domain = normalised.rpartition("@")
    if not at:
        return normalised, ""
    return local, domain


def loose_local_part(local: str) -> str:
    """The local part without a `+tag` and without dots: for near-miss reports only.

    Many providers deliver `jane.doe+ci@corp.example` to `janedoe@corp.example`, so these
    are probably one person; GitHub still counts them apart, so we never merge on this key.
    """
    untagged = local.split("+", 1)[0]
    return untagged.replace(".", "")
