"""The accounts of the local MWAA control plane (mwaa_local.py): one store of environments
per account, and the account of each request.

A request's account is the one moto says its access key belongs to (STS GetCallerIdentity:
keys AssumeRole handed out belong to the role's account, "testing" to the default one), as
AWS acts in the caller's account. Each account has its own environments (two accounts may
both have ``analytics``), ARNs and Celery queues with its id, and its status events on its
own default bus in moto.
"""
from __future__ import annotations

import re
import threading

import mwaa_local_env as model


class AccountStores:
    """Mixed into ControlPlane, which sets ``region``, ``account`` (the default),
    ``moto_url``, ``lock`` and ``stores`` ({account: Store}) and calls ``_init_accounts``."""

    def _init_accounts(self):
        self._request = threading.local()  # the account of the request this thread serves
        self._key_accounts: dict[str, str] = {}

    @property
    def store(self) -> model.Store:
        """The store of the account the current request comes from (else the default's)."""
        return self.store_for(getattr(self._request, "account", None) or self.account)

    def store_for(self, account: str) -> model.Store:
        with self.lock:
            store = self.stores.get(account)
            if store is None:
                default = self.stores[self.account]
                store = model.Store(self.region, account, self.moto_url, self.accounts)
                store.defaults, store.config = dict(default.defaults), dict(default.config)
                self.stores[account] = store
            return store

    def accounts(self) -> list[str]:
        with self.lock:
            return list(self.stores)

    def use_account(self, account: str | None) -> None:
        self._request.account = account

    def account_of(self, authorization: str | None) -> str:
        """The account of a SigV4-signed request, as moto sees its access key (keys that
        AssumeRole handed out belong to the role's account; any other key to the default)."""
        match = re.search(r"Credential=([^/,\s]+)/", authorization or "")
        key = match.group(1) if match else None
        if not key or not self.moto_url:
            return self.account
        with self.lock:
            if key in self._key_accounts:
                return self._key_accounts[key]
        import boto3
        account = boto3.client("sts", endpoint_url=self.moto_url, region_name=self.region,
                               aws_access_key_id=key, aws_secret_access_key="unchecked") \
            .get_caller_identity()["Account"]
        with self.lock:
            self._key_accounts[key] = account
        return account

    def events(self) -> list[dict]:
        """Every status-change event of every account, oldest first."""
        out = []
        for store in list(self.stores.values()):
            store.flush_events(timeout=5)
            with store.lock:
                out.extend(dict(e, account=store.account) for e in store.events)
        return sorted(out, key=lambda e: e.get("order", 0))

