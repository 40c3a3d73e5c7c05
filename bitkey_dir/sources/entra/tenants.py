"""Several Entra tenants behind one configured source: a managed-service provider's customers.

``tenant_ids = ["contoso.onmicrosoft.com", "…"]`` instead of ``tenant_id``: one multi-tenant
app registration (the same ``client_id``, client secret or certificate) consented in each
tenant. Each tenant is a source of its own named ``NAME/TENANT``, with its own token cache
and its own sign-in: operations ask them concurrently (a bounded number at a time) and
report each one's failure beside the others' answers, and ``--source NAME/TENANT`` picks
one. The client secret is kept once, under the configured name.

Used whole (an export, `login`), the source goes through its tenants one after another and
fails when one of them does, since an export or a sign-in must cover them all.

A tenant may be listed twice without it showing: by its ID and by one of its domains, or by
two domains. When the list names any tenant by domain, each such name is resolved to its
tenant ID (the identity platform's OpenID metadata says it) before the tenants are asked,
and a tenant named twice is read once, as it is first listed, with a notice naming both.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import ClassVar, Final, Protocol

from bitkey_dir.core.errors import AuthError, BitkeyError
from bitkey_dir.core.model import KeyEntry, Query, RecoveryKey
from bitkey_dir.core.rights import Holder
from bitkey_dir.runtime import interaction
from bitkey_dir.runtime.config import Settings
from bitkey_dir.runtime.credentials import Secret, Wanted
from bitkey_dir.sources.base import (
    Audits,
    AuthStatus,
    Escrow,
    ListsKeys,
    ShowsRights,
    SignsIn,
    Source,
    StoresNoKeyPackages,
    Warn,
)
from bitkey_dir.sources.entra.signin import SignIn, identifier, is_guid

MAX_TENANTS: Final = 1000


class Tenant(Source, SignsIn, ListsKeys, Audits, StoresNoKeyPackages, ShowsRights, Protocol):
    """What EntraTenants needs of each tenant: an EntraSource, made by the ``build`` that
    source.py passes in, since source.py imports this module and not the other way round."""

    @property
    def sign_in(self) -> SignIn: ...

    @property
    def principal(self) -> str: ...


# (source name, settings, tenant, whose client secret) → the tenant's source
BuildTenant = Callable[[str, Settings, str, str], Tenant]


@dataclass
class EntraTenants:
    """The tenants of one multi-tenant app, each an EntraSource of its own."""

    type_name: ClassVar[str] = "entra"

    name: str
    tenants: list[Tenant]
    _distinct: bool = field(default=False, repr=False)

    @property
    def no_key_packages(self) -> str:
        """Entra ID escrows recovery passwords only: there is no key package to read."""
        return self.tenants[0].no_key_packages

    @classmethod
    def from_settings(cls, name: str, settings: Settings, build: BuildTenant) -> EntraTenants:
        if "tenant_id" in settings:
            raise settings.error("tenant_id", "tenant_id or tenant_ids, not both")
        ids = settings.string_list("tenant_ids", allow_single=False)
        if not ids or len(ids) > MAX_TENANTS:
            raise settings.error(
                "tenant_ids", f"a list of 1 to {MAX_TENANTS} tenant IDs or domains"
            )
        seen: set[str] = set()
        tenants = []
        for tenant in ids:
            tenant_id = identifier(settings, "tenant_ids", tenant)
            if tenant_id.lower() in seen:
                raise settings.item_error("tenant_ids", tenant, "each tenant once")
            seen.add(tenant_id.lower())
            tenants.append(build(f"{name}/{tenant_id}", settings, tenant_id, name))
        return cls(name=name, tenants=tenants)

    def parts(self) -> list[Source]:
        return list(self.distinct())

    def distinct(self) -> list[Tenant]:
        """The tenants, each once: one named twice (by ID and domain, or by two domains) is
        kept as first listed, the other closed, with a notice (the module says how)."""
        if self._distinct:
            return self.tenants
        self._distinct = True
        if len(self.tenants) < 2 or all(is_guid(t.sign_in.tenant_id) for t in self.tenants):
            return self.tenants
        kept: dict[str, Tenant] = {}
        for tenant in self.tenants:
            named = tenant.sign_in.tenant_id
            found = tenant.sign_in.directory_id() or named.lower()
            first = kept.setdefault(found, tenant)
            if first is not tenant:
                interaction.current().notice(
                    f"{self.name}: tenant_ids names the tenant {found} twice "
                    f"({first.sign_in.tenant_id} and {named}): it is read once, as {first.name}"
                )
                tenant.close()
        self.tenants = list(kept.values())
        return self.tenants

    def describe(self) -> str:
        first = self.tenants[0].sign_in
        count = len(self.tenants)
        return f"{first.graph_url} {count} tenant{'s' if count != 1 else ''} ({first.auth})"

    @property
    def principal(self) -> str:
        return self.tenants[0].principal

    def close(self) -> None:
        for tenant in self.tenants:
            tenant.close()

    # -- the whole source, tenant after tenant --------------------------------------------

    def find(self, query: Query, warn: Warn) -> list[RecoveryKey]:
        """Every tenant's answer; a tenant that fails is a warning when another found a key,
        and the failure itself when none did (a sign-in or rights problem first)."""
        found: list[RecoveryKey] = []
        failures: list[BitkeyError] = []
        for tenant in self.distinct():
            try:
                found += tenant.find(query, warn)
            except BitkeyError as exc:
                failures.append(exc)
        if failures and not found:
            raise next((f for f in failures if isinstance(f, AuthError)), failures[0])
        for failure in failures:
            warn(failure.message)
        return found

    def rights_holders(self, scope: str | None, warn: Warn) -> list[Holder]:
        """Each tenant's holders of a role that reads keys, tenant after tenant."""
        found: list[Holder] = []
        for tenant in self.distinct():
            found += tenant.rights_holders(scope, warn)
        return found

    def iter_keys(self, warn: Warn) -> Iterator[RecoveryKey]:
        for tenant in self.distinct():
            yield from tenant.iter_keys(warn)

    def iter_key_entries(self, warn: Warn) -> Iterator[KeyEntry]:
        for tenant in self.distinct():
            yield from tenant.iter_key_entries(warn)

    def iter_escrow(self, warn: Warn) -> Iterator[Escrow]:
        for tenant in self.distinct():
            yield from tenant.iter_escrow(warn)

    # -- signing in to every tenant -------------------------------------------------------

    @property
    def login_secret(self) -> Wanted | None:
        return self.tenants[0].login_secret

    def login(self, secret: Secret | None) -> str:
        """Sign in to each tenant (the secret, if any, is stored once)."""
        done = []
        for tenant in self.distinct():
            try:
                done.append(tenant.login(secret))
            except BitkeyError as exc:
                raise type(exc)(
                    f"{tenant.name}: {exc.message} (signed in to {len(done)} of "
                    f"{len(self.distinct())} tenants)",
                    hint=exc.hint,
                ) from None
        return f"{done[-1]} for each of {len(self.tenants)} tenants"

    def logout(self) -> list[str]:
        removed: list[str] = []
        for tenant in self.tenants:
            removed += [f"{tenant.name}: {what}" for what in tenant.logout()]
        return removed

    def auth_status(self) -> AuthStatus:
        """The first tenant's; `auth status` lists each tenant as a source of its own."""
        return self.tenants[0].auth_status()
