"""What a 3.x export/import carries, read straight from a metadata DB (not through the code
under test, not through REST, which masks secrets):

    <airflow venv>/bin/python read_settings.py DATABASE_URL FERNET_KEY  ->  JSON
    {"variable": {key: {val, description}}, "connection": {conn_id: {...}},
     "slot_pool": {pool: {...}}, "dag": {dag_id: is_paused}, "counts": {table: rows}}
Secrets are decrypted with the given Fernet key (a value under another key fails here)."""
import json
import sys

import sqlalchemy as sa
from cryptography.fernet import Fernet


def main(url, key):
    fernet, engine = Fernet(key.encode()), sa.create_engine(url)
    plain = lambda v, flag: fernet.decrypt(v.encode()).decode() if v is not None and flag else v  # noqa: E731
    out = {"variable": {}, "connection": {}, "slot_pool": {}, "dag": {}, "counts": {}}
    with engine.connect() as conn:
        for r in conn.execute(sa.text("SELECT * FROM variable")).mappings():
            out["variable"][r["key"]] = {"val": plain(r["val"], r["is_encrypted"]), "description": r["description"]}
        for r in conn.execute(sa.text("SELECT * FROM connection")).mappings():
            out["connection"][r["conn_id"]] = {
                c: r[c] for c in ("conn_type", "description", "host", "schema", "login", "port")}
            out["connection"][r["conn_id"]]["password"] = plain(r["password"], r["is_encrypted"])
            out["connection"][r["conn_id"]]["extra"] = plain(r["extra"], r["is_extra_encrypted"])
        for r in conn.execute(sa.text("SELECT * FROM slot_pool")).mappings():
            out["slot_pool"][r["pool"]] = {c: r[c] for c in ("slots", "description", "include_deferred")}
        for r in conn.execute(sa.text("SELECT dag_id, is_paused FROM dag")).mappings():
            out["dag"][r["dag_id"]] = r["is_paused"]
        for t in out:
            if t != "counts":
                out["counts"][t] = conn.execute(sa.text(f"SELECT count(*) FROM {t}")).scalar()
    json.dump(out, sys.stdout)


if __name__ == "__main__":
    main(*sys.argv[1:3])
