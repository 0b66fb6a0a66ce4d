"""Simulated enterprises: a hand-written one for the demo, generated ones for tests and
benchmarks.

Generated data follows the shapes that make license sync hard in practice: the same person
on several instances with the same address in different letter cases, suspended and
email-less accounts, `+tag` addresses that look like someone else's, organizations mixed
into `GET /users`, and a GHEC enterprise whose members match some people by verified-domain
email and others by SAML NameID.
"""

from __future__ import annotations

import itertools
import random
from collections.abc import Sequence
from dataclasses import replace
from datetime import UTC, datetime, timedelta

from license_sync.models import ConsumedLicenseUser
from license_sync_local.simulator.model import (
    SCIM_SETUP_LOGIN,
    GitHubConnectState,
    ManualUpload,
    SimulatedGhec,
    SimulatedGhes,
    SimulatedUser,
    snapshot,
)

ENTERPRISE = "acme"
VERIFIED_DOMAINS = ("acme.example", "eng.acme.example")
"""The enterprise's verified domains: only addresses in them can match a member's
verified-domain emails; the others can only match through SAML."""
SITE_ADMIN_EMAIL = "ghes-admin@acme.example"
"""Every instance's `site-admin` account belongs to the same administrator."""

# A word list reads better as prose than as a hundred one-word lines.
_FIRST_NAMES = (  # noqa: SIM905
    "aaliyah adam aisha alex alice amara amir ana andrei anna arjun ava ben bianca bo "
    "carla carlos chen chloe chris dana daniel david diego dmitri elena eli emil emma "
    "erik eva fatima felix finn gabriel grace hana hannah hugo ian ines ivan jack james "
    "jana jin joao jonas jose julia kai karim kate kenji lara lea leo liam lina lucas "
    "luis maja marco maria mateo maya mia mohamed nadia nina noah olga omar oscar paula "
    "pedro priya rafael rania rosa ruby sam sara sofia sven tariq theo tom uma valentina "
    "victor wei yara yusuf zoe"
).split()
_LAST_NAMES = (  # noqa: SIM905
    "abbott adams ahmed alvarez andersen baker bauer becker bianchi brown chen clark "
    "costa cruz dubois evans fischer garcia gomez gonzalez gruber hall hansen hoffmann "
    "ivanova jensen johnson kaur khan kim klein kowalski kumar lambert larsen lee lopez "
    "martin meyer moreau muller murphy nakamura nguyen novak okafor olsen park patel "
    "perez petrov popescu quinn ramos reyes ricci rossi sato schmidt schneider silva "
    "singh smith suzuki tanaka taylor thomas torres vargas wagner walker wang weber "
    "wilson wong yamamoto young zhang"
).split()
_OTHER_DOMAINS = ("contractor.example", "partner.example")
_PLUS_TAGS = ("ci", "test", "admin", "old", "bot")

_SUSPENDED_SHARE = 0.02
_NO_EMAIL_SHARE = 0.01
_DORMANT_SHARE = 0.06
_PUBLIC_EMAIL_SHARE = 0.35
_EXTRA_SITE_ADMIN_SHARE = 0.001
_PLUS_TAG_SHARE = 0.005
_CASE_VARIANT_SHARE = 0.4
"""Of a person's accounts after the first: how many spell the address differently."""
_OTHER_LOGIN_SHARE = 0.2
_ORGANIZATION_SHARE = 1 / 400
_ID_GAP_SHARE = 0.03
"""Deleted accounts leave gaps in the sign-up IDs."""
_DEFAULT_MEMBER_SHARE = 0.4
_MATCHED_MEMBER_SHARE = 0.85
_VERIFIED_EMAIL_MATCH_SHARE = 0.6


class _InstanceBuilder:
    def __init__(self, hostname: str, rng: random.Random) -> None:
        self.hostname = hostname
        self.users: list[SimulatedUser] = []
        self._rng = rng
        self._next_id = 1
        self._organizations = 0

    def _take_id(self) -> int:
        user_id = self._next_id
        gap = self._rng.randint(1, 20) if self._rng.random() < _ID_GAP_SHARE else 0
        self._next_id += 1 + gap
        return user_id

    def add_site_admin(self) -> None:
        """The account license-sync signs in with: never suspended, never without email."""
        self.users.append(
            SimulatedUser(self._take_id(), "site-admin", SITE_ADMIN_EMAIL, site_admin=True)
        )

    def add_person(self, login: str, email: str | None) -> None:
        rng = self._rng
        if rng.random() < _NO_EMAIL_SHARE:
            email = None
        public_email = email.strip() if email and rng.random() < _PUBLIC_EMAIL_SHARE else None
        self.users.append(
            SimulatedUser(
                id=self._take_id(),
                login=login,
                email=email,
                suspended=rng.random() < _SUSPENDED_SHARE,
                site_admin=rng.random() < _EXTRA_SITE_ADMIN_SHARE,
                dormant=rng.random() < _DORMANT_SHARE,
                public_email=public_email,
            )
        )
        if rng.random() < _ORGANIZATION_SHARE:
            self.add_organization()

    def add_organization(self) -> None:
        self._organizations += 1
        self.users.append(
            SimulatedUser(
                id=self._take_id(),
                login=f"team-{self._organizations}",
                email=None,
                type="Organization",
            )
        )

    def build(self) -> SimulatedGhes:
        people = sum(1 for user in self.users if user.type == "User")
        return SimulatedGhes(
            hostname=self.hostname,
            users=self.users,
            seats=_round_up(int(people * 1.2) + 1, 100),
            scim_enabled=False,
        )


def generate_enterprise(
    *,
    seed: int,
    instances: int,
    accounts_total: int,
    overlap: float = 0.3,
    ghec_members: int | None = None,
    hostnames: Sequence[str] | None = None,
    github_connect_synced_at: datetime | None = None,
) -> tuple[list[SimulatedGhes], SimulatedGhec]:
    """A deterministic enterprise for a seed.

    - `accounts_total` user accounts over all instances (organizations come on top, about
      one per 400 accounts and at least one per instance). Each instance starts with its
      `site-admin` account, one administrator (`SITE_ADMIN_EMAIL`) on every instance.
    - `overlap`: the share of people who also have accounts on other instances (one more
      instance mostly, sometimes several). Their extra accounts carry the same address, in
      about 40% of cases spelt with different letter case (rarely with surrounding spaces).
    - About 2% suspended, 1% without email, 6% dormant accounts, and 0.5% of people with an
      extra `first.last+tag@` account (a different person under DOMAIN.md's rules).
    - GHEC: `ghec_members` members (default 40% of the people); 85% of them are people from
      the instances, matched by verified-domain email (60% of those in a verified domain)
      or by SAML NameID (the rest, and every address outside the verified domains); 15%
      have no server account.
    - Every instance is connected with GitHub Connect license sync, last synced at
      `github_connect_synced_at` (default: now) with the accounts it has now, so GHEC's
      count equals a fresh one until a test changes an instance.

    Use `oracle.expected_usage` for the counts a correct sync produces.
    """
    if instances < 1:
        raise ValueError("instances must be at least 1")
    if accounts_total < instances:
        raise ValueError("accounts_total must leave every instance its site-admin account")
    if not 0.0 <= overlap <= 1.0:
        raise ValueError("overlap is a share between 0 and 1")
    if hostnames is not None and len(hostnames) != instances:
        raise ValueError("give one hostname per instance")
    rng = random.Random(seed)
    names = (
        list(hostnames)
        if hostnames
        else [f"ghes-{n:02d}.acme.example" for n in range(1, instances + 1)]
    )
    builders = [_InstanceBuilder(hostname, rng) for hostname in names]
    for builder in builders:
        builder.add_site_admin()
        builder.add_organization()

    people = _place_people(builders, accounts_total - instances, overlap, rng)
    ghes = [builder.build() for builder in builders]
    synced_at = github_connect_synced_at or datetime.now(UTC)
    for instance in ghes:
        instance.connect = GitHubConnectState(
            last_synced_at=synced_at, accounts_at_last_sync=snapshot(instance.users)
        )
    member_count = (
        round(len(people) * _DEFAULT_MEMBER_SHARE) if ghec_members is None else ghec_members
    )
    rows = _members(people, member_count, rng)
    ghec = SimulatedGhec(
        enterprise=ENTERPRISE,
        seats_purchased=_round_up(len(people) + member_count, 100),
        rows=rows,
    )
    return ghes, ghec


def _place_people(
    builders: list[_InstanceBuilder], accounts: int, overlap: float, rng: random.Random
) -> list[tuple[str, str, str, str]]:
    """Creates people until `accounts` accounts exist; returns (email, first, last, login)
    of each person in creation order."""
    instances = len(builders)
    all_instances = range(instances)
    # People land more often on the first instances, as with a main instance and satellites.
    home_weights = list(itertools.accumulate(1.0 / (index + 1) ** 0.5 for index in all_instances))
    people: list[tuple[str, str, str, str]] = []
    local_parts_seen: dict[str, int] = {}
    remaining = accounts
    random_share = rng.random
    while remaining > 0:
        first, last = rng.choice(_FIRST_NAMES), rng.choice(_LAST_NAMES)
        base = f"{first}.{last}"
        seen = local_parts_seen.get(base, 0)
        local_parts_seen[base] = seen + 1
        local_part = base if seen == 0 else f"{base}{seen + 1}"
        email = f"{local_part}@{_pick_domain(random_share())}"
        login = local_part.replace(".", "-")

        home = rng.choices(all_instances, cum_weights=home_weights)[0]
        extra = 0
        if instances > 1 and random_share() < overlap:
            extra = 1 if instances == 2 or random_share() < 0.75 else rng.randint(2, instances - 1)
        others = (
            rng.sample([index for index in all_instances if index != home], extra) if extra else []
        )
        placed = [home, *others][:remaining]
        for position, index in enumerate(placed):
            if position == 0:
                builders[index].add_person(login, email)
                continue
            other_login = (
                login if random_share() >= _OTHER_LOGIN_SHARE else f"{first[0]}{last}-{len(people)}"
            )
            address = (
                _spelling_variant(email, rng) if random_share() < _CASE_VARIANT_SHARE else email
            )
            builders[index].add_person(other_login, address)
        remaining -= len(placed)
        people.append((email, first, last, login))

        if remaining > 0 and random_share() < _PLUS_TAG_SHARE:
            tag = rng.choice(_PLUS_TAGS)
            user_part, domain = email.split("@")
            builders[rng.randrange(instances)].add_person(
                f"{login}-{tag}", f"{user_part}+{tag}@{domain}"
            )
            remaining -= 1

    return people


def _pick_domain(share: float) -> str:
    if share < 0.7:
        return VERIFIED_DOMAINS[0]
    if share < 0.85:
        return VERIFIED_DOMAINS[1]
    if share < 0.95:
        return _OTHER_DOMAINS[0]
    return _OTHER_DOMAINS[1]


def _spelling_variant(email: str, rng: random.Random) -> str:
    """The same address as another system may have stored it."""
    local_part, domain = email.split("@")
    choice = rng.random()
    if choice < 0.45:
        return ".".join(part.capitalize() for part in local_part.split(".")) + "@" + domain
    if choice < 0.7:
        return f"{local_part}@{domain.upper()}"
    if choice < 0.9:
        return email.upper()
    if choice < 0.95:
        return f"{email} "
    return f" {local_part.capitalize()}@{domain}"


def _members(
    people: list[tuple[str, str, str, str]], count: int, rng: random.Random
) -> list[ConsumedLicenseUser]:
    matched = min(round(count * _MATCHED_MEMBER_SHARE), len(people))
    rows: list[ConsumedLicenseUser] = []
    for index in rng.sample(range(len(people)), matched):
        email, first, last, login = people[index]
        in_verified_domain = email.endswith(tuple(f"@{domain}" for domain in VERIFIED_DOMAINS))
        by_verified_email = in_verified_domain and rng.random() < _VERIFIED_EMAIL_MATCH_SHARE
        rows.append(
            _member_row(
                login=f"{login}_{ENTERPRISE}",
                name=f"{first.capitalize()} {last.capitalize()}",
                verified_emails=[email] if by_verified_email else [],
                saml_name_id=None if by_verified_email else _spelling_variant(email, rng).strip(),
            )
        )
    for number in range(1, count - matched + 1):
        rows.append(
            _member_row(
                login=f"cloud-user-{number}_{ENTERPRISE}",
                name=f"Cloud User {number}",
                verified_emails=[f"cloud.user{number}@{VERIFIED_DOMAINS[0]}"],
                saml_name_id=None,
            )
        )
    return rows


def _member_row(
    *, login: str, name: str, verified_emails: list[str], saml_name_id: str | None
) -> ConsumedLicenseUser:
    return ConsumedLicenseUser(
        github_com_login=login,
        github_com_name=name,
        github_com_profile=f"https://github.com/{login}",
        github_com_user=True,
        github_com_member_roles=[f"{ENTERPRISE}:Member"],
        github_com_enterprise_roles=["member"],
        github_com_verified_domain_emails=verified_emails,
        github_com_saml_name_id=saml_name_id,
        github_com_two_factor_auth=True,
        enterprise_server_user=False,
        total_user_accounts=1,
    )


def _round_up(value: int, step: int) -> int:
    return max(step, -(-value // step) * step)


# --- the demo enterprise -------------------------------------------------------------------

DEMO_HOSTNAMES = ("ghes-eu.acme.example", "ghes-us.acme.example", "ghes-lab.acme.example")
DEMO_EXPECTED_SERVER_PERSONS = 11
DEMO_EXPECTED_PERSONS_MATCHED_TO_MEMBERS = 2
DEMO_EXPECTED_SEATS_CONSUMED = 13
"""A fresh count of the three instances (what license-sync reports)."""
DEMO_EXPECTED_GHEC_SEATS_CONSUMED = 12
"""GHEC's own count, from what GitHub holds (it never changes because license-sync ran)."""
DEMO_GITHUB_CONNECT_AGE = timedelta(days=7)
DEMO_MANUAL_UPLOAD_AGE = timedelta(days=30)


def demo_enterprise(*, now: datetime | None = None) -> tuple[list[SimulatedGhes], SimulatedGhec]:
    """A small enterprise whose every account is there to show one rule of DOMAIN.md, and
    whose GHEC count differs from a fresh one as a real enterprise's does.

    ghes-eu.acme.example (SCIM enabled), seat-consuming accounts marked *:
      1 site-admin   ghes-admin@acme.example *   the same administrator on all three
      2 scim-admin   (no email)                  SCIM setup user: no seat
      3 alice        alice@acme.example *
      4 bob          bob.builder@acme.example *
      5 erin         Erin.Example@acme.example *
      6 frank        frank@acme.example          suspended: no seat
      7 acme-eu      organization                 not a person (not in the report)
      8 grace        (no email) *                 her own person
      9 heidi-ci     heidi+ci@acme.example *      NOT heidi: addresses are not rewritten
    ghes-us.acme.example (SCIM off):
      1 site-admin   ghes-admin@acme.example *
      2 alice-us     ALICE@acme.example *         alice (case is ignored)
      3 erin         erin.example@ACME.example *  erin
      4 heidi        heidi@acme.example *
      5 ivan         ivan@contractor.example *    dormant, still a seat
      6 judy         judy@acme.example            suspended here...
    ghes-lab.acme.example (SCIM off; its report answers 202 twice before the CSV):
      1 site-admin   ghes-admin@acme.example *
      2 bob          bob.builder@acme.example *   bob
      4 judy         judy@acme.example *          ...active here: one seat
      5 ken          (no email) *                 his own person
      6 build-bot    build-bot@acme.example *     a machine account is still a seat

    GHEC enterprise `acme`, members:
      alice_acme  verified-domain email alice@acme.example
      bob_acme    SAML NameID Bob.Builder@acme.example (no verified email)
      carol_acme  verified carol@acme.example, no server account
      dave_acme   SAML NameID dave@acme.example, no server account
    What GitHub holds for the servers (its rows; nothing license-sync pushes changes them):
      - ghes-eu: connected, GitHub Connect license sync on, last synced a week before
        `now` (default: the current time). Since then frank was suspended, heidi-ci was
        added and `intern` (10, intern@acme.example) was removed.
      - ghes-us: not connected and never uploaded: GitHub holds nothing for it.
      - ghes-lab: not connected; an administrator uploaded its usage file by hand 30 days
        before `now`, when it still had account 3 (old.contractor@contractor.example,
        deleted since) and not build-bot.

    Expected (see `oracle.expected_usage`):
      - Fresh: 16 seat-consuming accounts (eu 6, us 5, lab 5) are 11 persons: the
        administrator, alice, bob, erin, grace, heidi+ci, heidi, ivan, judy, ken,
        build-bot; alice (verified email) and bob (SAML NameID) are members, so
        4 members + 9 unmatched persons = 13 seats.
      - GHEC: 4 members + 8 unmatched persons (the administrator, erin, frank, grace,
        intern, old.contractor, judy, ken) = 12 seats. Drift +1: heidi+ci, heidi, ivan and
        build-bot are new to GitHub (+4); frank, intern and old.contractor are gone (-3).
    """
    now = now or datetime.now(UTC)
    eu = SimulatedGhes(
        hostname=DEMO_HOSTNAMES[0],
        users=[
            SimulatedUser(1, "site-admin", SITE_ADMIN_EMAIL, site_admin=True),
            SimulatedUser(2, SCIM_SETUP_LOGIN, None, site_admin=True),
            SimulatedUser(3, "alice", "alice@acme.example", public_email="alice@acme.example"),
            SimulatedUser(4, "bob", "bob.builder@acme.example"),
            SimulatedUser(5, "erin", "Erin.Example@acme.example"),
            SimulatedUser(6, "frank", "frank@acme.example", suspended=True),
            SimulatedUser(7, "acme-eu", None, type="Organization"),
            SimulatedUser(8, "grace", None),
            SimulatedUser(9, "heidi-ci", "heidi+ci@acme.example"),
        ],
        seats=50,
        scim_enabled=True,
    )
    eu_a_week_ago = [
        *(replace(user, suspended=False) for user in eu.users if user.id != 9),
        SimulatedUser(10, "intern", "intern@acme.example"),
    ]
    eu.connect = GitHubConnectState(
        last_synced_at=now - DEMO_GITHUB_CONNECT_AGE, accounts_at_last_sync=eu_a_week_ago
    )
    us = SimulatedGhes(
        hostname=DEMO_HOSTNAMES[1],
        users=[
            SimulatedUser(1, "site-admin", SITE_ADMIN_EMAIL, site_admin=True),
            SimulatedUser(2, "alice-us", "ALICE@acme.example"),
            SimulatedUser(
                3, "erin", "erin.example@ACME.example", public_email="erin.example@acme.example"
            ),
            SimulatedUser(4, "heidi", "heidi@acme.example"),
            SimulatedUser(5, "ivan", "ivan@contractor.example", dormant=True),
            SimulatedUser(6, "judy", "judy@acme.example", suspended=True),
        ],
        seats=50,
        scim_enabled=False,
        is_connected=False,  # GraphQL's view; `connect` None: GitHub never heard of it
    )
    lab = SimulatedGhes(
        hostname=DEMO_HOSTNAMES[2],
        users=[
            SimulatedUser(1, "site-admin", SITE_ADMIN_EMAIL, site_admin=True),
            SimulatedUser(2, "bob", "bob.builder@acme.example"),
            SimulatedUser(4, "judy", "judy@acme.example"),
            SimulatedUser(5, "ken", None),
            SimulatedUser(6, "build-bot", "build-bot@acme.example"),
        ],
        seats=25,
        report_ready_after=2,
        scim_enabled=False,
    )
    lab_when_uploaded = [
        *(replace(user) for user in lab.users[:2]),
        SimulatedUser(3, "old-contractor", "old.contractor@contractor.example"),
        *(replace(user) for user in lab.users[2:4]),
    ]
    lab.connect = GitHubConnectState(
        connected=False,
        license_sync_enabled=False,
        manual_uploads=[
            ManualUpload(uploaded_at=now - DEMO_MANUAL_UPLOAD_AGE, accounts=lab_when_uploaded)
        ],
    )
    ghec = SimulatedGhec(
        enterprise=ENTERPRISE,
        seats_purchased=20,
        rows=[
            _member_row(
                login="alice_acme",
                name="Alice Liddell",
                verified_emails=["alice@acme.example"],
                saml_name_id=None,
            ),
            _member_row(
                login="bob_acme",
                name="Bob Builder",
                verified_emails=[],
                saml_name_id="Bob.Builder@acme.example",
            ),
            _member_row(
                login="carol_acme",
                name="Carol Danvers",
                verified_emails=["carol@acme.example"],
                saml_name_id=None,
            ),
            _member_row(
                login="dave_acme",
                name="Dave Lister",
                verified_emails=[],
                saml_name_id="dave@acme.example",
            ),
        ],
    )
    return [eu, us, lab], ghec
