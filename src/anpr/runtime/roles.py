"""Database roles: the schema's owner migrates, a least-privilege role serves.

The owner of a table can disable or drop its triggers, and a superuser ignores privileges altogether, so an audit
trail is only append-only against a role that is neither. Each service therefore runs (when configured with
``migration_database_url``, and always on the embedded database) as a runtime role that the owner grants, after
every migration run, exactly what the service's queries use: USAGE on the schema; SELECT, INSERT, UPDATE and DELETE
on its tables but only SELECT and INSERT on the append-only ones; USAGE and SELECT on sequences; EXECUTE on its
functions. Never ownership, CREATE, TRUNCATE, REFERENCES or TRIGGER. LISTEN/NOTIFY, advisory locks and temporary
tables (hotlist's import staging) need no grant beyond PostgreSQL's defaults for PUBLIC.
"""

from __future__ import annotations

import re
from urllib.parse import quote, urlsplit, urlunsplit

from anpr.runtime.database import Connection
from anpr.runtime.errors import ConfigurationError

APPEND_ONLY_TABLES = ("audit_log",)
"""Tables the runtime role may read and insert into, never update, delete or truncate (each service's audit trail)."""

EMBEDDED_OWNER_ROLE = "anpr_owner"
"""On the embedded database: owns the services' schemas and runs their migrations."""
EMBEDDED_RUNTIME_ROLE = "anpr_app"
"""On the embedded database: the role the services serve as (LOGIN, no superuser, owns nothing)."""

_SCHEMA_NAME = re.compile(r"[a-z_][a-z0-9_]{0,62}")
# Roles are created, and the embedded server's settings changed, by one process at a time.
_EMBEDDED_ROLES_LOCK = 0x616E70725F726F6C  # "anpr_rol"


def quote_identifier(name: str) -> str:
    """``name`` as a double-quoted SQL identifier (role names come from URLs, so they may hold anything)."""
    if not name or "\x00" in name:
        raise ConfigurationError(f"invalid database identifier {name!r}")
    return '"' + name.replace('"', '""') + '"'


def _schema(schema: str) -> str:
    if not _SCHEMA_NAME.fullmatch(schema):
        raise ConfigurationError(f"invalid schema name {schema!r}")
    return schema


def with_user(url: str, user: str) -> str:
    """The same postgresql:// URL for another role (no password: the embedded server trusts its local socket)."""
    parts = urlsplit(url)
    host = parts.netloc.rpartition("@")[2]
    return urlunsplit(parts._replace(netloc=f"{quote(user, safe='')}@{host}"))


async def owned_objects(connection: Connection, schema: str, role: str) -> list[str]:
    """What ``role`` owns in ``schema`` (the schema itself, relations, functions, types); empty when nothing."""
    rows = await connection.fetch(
        """SELECT 'schema ' || n.nspname AS object FROM pg_namespace n
            WHERE n.nspname = $1 AND n.nspowner = to_regrole($2)
           UNION ALL
           SELECT 'relation ' || c.oid::regclass::text FROM pg_class c
            WHERE c.relnamespace = to_regnamespace($1) AND c.relowner = to_regrole($2)
           UNION ALL
           SELECT 'function ' || p.oid::regprocedure::text FROM pg_proc p
            WHERE p.pronamespace = to_regnamespace($1) AND p.proowner = to_regrole($2)
           UNION ALL
           SELECT 'type ' || t.oid::regtype::text FROM pg_type t
            WHERE t.typnamespace = to_regnamespace($1) AND t.typowner = to_regrole($2)
              AND t.typrelid = 0 AND t.typelem = 0
           ORDER BY 1""",
        _schema(schema),
        role,
    )
    return [str(row["object"]) for row in rows]


async def check_separation(connection: Connection, schema: str, runtime_role: str) -> None:
    """Refuse a runtime role that could do what the owner (this connection's role) can.

    A superuser, the owner itself or a member of the owner's role would make the grants meaningless; a runtime role
    that still owns objects (a deployment that used one role before) must hand them over first.
    """
    row = await connection.fetchrow(
        """SELECT current_user AS owner, r.rolsuper AS superuser,
                  pg_has_role(r.oid, current_user, 'MEMBER') AS member_of_owner,
                  (SELECT pg_get_userbyid(nspowner) FROM pg_namespace WHERE nspname = $2) AS schema_owner
             FROM pg_roles r WHERE r.rolname = $1""",
        runtime_role,
        _schema(schema),
    )
    if row is None:
        raise ConfigurationError(f"database role {runtime_role!r} of database_url does not exist")
    owner = str(row["owner"])
    if row["superuser"]:
        raise ConfigurationError(
            f"database_url's role {runtime_role!r} is a superuser: it bypasses every privilege, so the audit log is "
            "not protected; give the service a role without SUPERUSER"
        )
    if runtime_role == owner or row["member_of_owner"]:
        raise ConfigurationError(
            f"database_url's role {runtime_role!r} is (or is a member of) the migration role {owner!r}: "
            "migration_database_url must name a separate owner role"
        )
    owned = await owned_objects(connection, schema, runtime_role)
    if owned or (row["schema_owner"] is not None and row["schema_owner"] != owner):
        previous = runtime_role if owned else str(row["schema_owner"])
        raise ConfigurationError(
            f"schema {schema} (or objects in it) is owned by {previous!r}, not by the migration role {owner!r}; "
            f"hand it over once, as a superuser: ALTER SCHEMA {schema} OWNER TO {quote_identifier(owner)}; "
            f"REASSIGN OWNED BY {quote_identifier(previous)} TO {quote_identifier(owner)}"
        )


async def grant_runtime_privileges(connection: Connection, schema: str, runtime_role: str) -> None:
    """Grant ``runtime_role`` what the service needs in ``schema``, and revoke what it must not have; idempotent.

    Run by the owner after each migration run, so tables added since the last start are covered.
    """
    name, role = _schema(schema), quote_identifier(runtime_role)
    statements = [
        f"GRANT USAGE ON SCHEMA {name} TO {role}",
        f"REVOKE CREATE ON SCHEMA {name} FROM {role}",
        f"GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA {name} TO {role}",
        f"REVOKE TRUNCATE, REFERENCES, TRIGGER ON ALL TABLES IN SCHEMA {name} FROM {role}",
        f"GRANT USAGE, SELECT ON ALL SEQUENCES IN SCHEMA {name} TO {role}",
        f"REVOKE UPDATE ON ALL SEQUENCES IN SCHEMA {name} FROM {role}",
        f"GRANT EXECUTE ON ALL FUNCTIONS IN SCHEMA {name} TO {role}",
        # Migration bookkeeping is the owner's; the runtime role may only read which versions are applied.
        f"REVOKE INSERT, UPDATE, DELETE ON {name}.schema_migrations FROM {role}",
    ]
    for table in APPEND_ONLY_TABLES:
        if await connection.fetchval("SELECT to_regclass($1) IS NOT NULL", f"{name}.{table}"):
            statements.append(f"REVOKE UPDATE, DELETE ON {name}.{table} FROM {role}")
    # One transaction: other replicas never see the role between the GRANT on all tables and the REVOKEs after it.
    # The lock: replicas starting together would otherwise update the same catalog rows at once, and PostgreSQL
    # fails the second GRANT with "tuple concurrently updated".
    async with connection.transaction():
        await connection.execute("SELECT pg_advisory_xact_lock(hashtextextended($1, 0))", f"anpr-grants:{name}")
        for statement in statements:
            await connection.execute(statement)


async def ensure_embedded_roles(connection: Connection, schemas: tuple[str, ...]) -> None:
    """On the embedded server (``connection`` is its superuser): create the owner and runtime roles, idempotently.

    Schemas made before the roles existed (by the superuser, in an older data directory) are handed to the owner.
    """
    owner, runtime = quote_identifier(EMBEDDED_OWNER_ROLE), quote_identifier(EMBEDDED_RUNTIME_ROLE)
    async with connection.transaction():
        await connection.execute("SELECT pg_advisory_xact_lock($1)", _EMBEDDED_ROLES_LOCK)
        for role in (EMBEDDED_OWNER_ROLE, EMBEDDED_RUNTIME_ROLE):
            if not await connection.fetchval("SELECT EXISTS (SELECT FROM pg_roles WHERE rolname = $1)", role):
                await connection.execute(f"CREATE ROLE {quote_identifier(role)}")
            # Stated every time, so an older or edited role is brought back to exactly this.
            await connection.execute(
                f"ALTER ROLE {quote_identifier(role)} LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOREPLICATION "
                "NOBYPASSRLS"
            )
        database = quote_identifier(str(await connection.fetchval("SELECT current_database()")))
        await connection.execute(f"GRANT CONNECT, CREATE, TEMPORARY ON DATABASE {database} TO {owner}")
        await connection.execute(f"GRANT CONNECT, TEMPORARY ON DATABASE {database} TO {runtime}")
        for schema in schemas:
            await _hand_over(connection, _schema(schema), EMBEDDED_OWNER_ROLE)


async def _hand_over(connection: Connection, schema: str, owner: str) -> None:
    """Give an existing schema and everything in it to ``owner`` (a no-op when it is already the owner's)."""
    if not await connection.fetchval("SELECT EXISTS (SELECT FROM pg_namespace WHERE nspname = $1)", schema):
        return
    new_owner = quote_identifier(owner)
    await connection.execute(f"ALTER SCHEMA {schema} OWNER TO {new_owner}")
    # Indexes, identity sequences and row types follow their table; the rest is altered one by one.
    rows = await connection.fetch(
        """SELECT 'TABLE ' || c.oid::regclass::text AS object FROM pg_class c
            WHERE c.relnamespace = to_regnamespace($1) AND c.relkind IN ('r', 'p', 'f')
              AND c.relowner <> to_regrole($2)
           UNION ALL
           SELECT 'VIEW ' || c.oid::regclass::text FROM pg_class c
            WHERE c.relnamespace = to_regnamespace($1) AND c.relkind = 'v' AND c.relowner <> to_regrole($2)
           UNION ALL
           SELECT 'SEQUENCE ' || c.oid::regclass::text FROM pg_class c
            WHERE c.relnamespace = to_regnamespace($1) AND c.relkind = 'S' AND c.relowner <> to_regrole($2)
              AND NOT EXISTS (SELECT FROM pg_depend d WHERE d.classid = 'pg_class'::regclass AND d.objid = c.oid
                                                        AND d.deptype IN ('a', 'i'))
           UNION ALL
           SELECT 'FUNCTION ' || p.oid::regprocedure::text FROM pg_proc p
            WHERE p.pronamespace = to_regnamespace($1) AND p.proowner <> to_regrole($2)""",
        schema,
        owner,
    )
    for row in rows:
        await connection.execute(f"ALTER {row['object']} OWNER TO {new_owner}")
